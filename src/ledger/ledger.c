/* ledger.c -- the deadline ledger (contract in ledger.h, design in
 * docs/ledger.md): its own Redis connection, the live claim path, the
 * sweep, acknowledgements after Kafka's delivery report, observed-mode
 * bookkeeping, claim renewals, metrics.
 *
 * Every decision that must be atomic in Redis is one FCALL of the library
 * in config/redis/eb_timers.lua; this file only sequences them. A timer in
 * the bridge's hands is a *ticket*, kept in a hash table keyed by (ledger,
 * db, key) from the moment it is claimed until Redis acknowledged it, so
 * the sweep never claims what this bridge already holds.
 *
 * The connection: AUTH -> CLIENT SETNAME -> FUNCTION LOAD REPLACE = ready.
 * Commands are pipelined; replies come in order (a FIFO of requests, whose
 * head's age detects a dead connection). A failure condemns the session:
 * redis_session.c closes it outside hiredis's callbacks (pending requests
 * then see NULL replies) and reconnects with backoff; it also runs the
 * connect timeout.
 *
 * @locality loop thread only.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <xxhash.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/notify.h"
#include "core/router.h"
#include "core/utf8.h"
#include "ledger/ledger.h"
#include "redis/redis_argv.h"
#include "redis/redis_conn.h"
#include "redis/redis_pending.h"
#include "redis/redis_reply.h"
#include "redis/redis_session.h"

/* ------------------------------------------------------------------------
 * Tunables
 * --------------------------------------------------------------------- */

/* Liveness check of the connection: often enough that a dead Redis is
 * noticed within a fraction of redis.heartbeat_timeout. */
#define TICK_MS 250

/* An idle connection is PINGed this often. */
#define IDLE_PING_NS (INT64_C(1000) * 1000000)

/* Timers per eb1_ack / eb1_claim: one burst of delivery reports or of
 * expiries rarely holds more, and one call stays well under a millisecond
 * of Redis time. */
#define ACK_BATCH   256
#define CLAIM_BATCH 256

/* Members per eb1_renew / keys per eb1_observe call: one call stays well
 * under a millisecond of Redis time. */
#define RENEW_BATCH   500
#define OBSERVE_BATCH 500

/* Tickets the sweep may add while this many are out already; the rest waits
 * for the next step (Kafka's queue bound drops what it cannot hold, and a
 * dropped sweep claim only waits claim_ttl, but there is no point). At
 * least this many, whatever kafka.queue.max_events says. */
#define MIN_MAX_TICKETS 1000

/* Errors of one kind are logged at most once per this many ms. */
#define LOG_EVERY_MS 5000

/* Status codes of eb1_claim / eb1_collect (eb_timers.lua). */
enum {
    ST_UNKNOWN = 0,
    ST_OWED = 1,
    ST_BUSY = 2,
    ST_DONE = 3,
    ST_CHANGED = 4,
    ST_PERSISTED = 5,
    ST_MOVED = 6,
    ST_TOUCHED = 7,
    ST_ERROR = 8, /* ours: an error reply */
    ST_COUNT = 9,
};
static const char *const st_names[ST_COUNT] = {"unknown",   "owed",  "busy",    "done", "changed",
                                               "persisted", "moved", "touched", "error"};

enum path { PATH_LIVE = 0, PATH_SWEEP = 1 };
static const char *const path_names[2] = {"live", "sweep"};

enum ack_result { ACK_REMOVED = 0, ACK_GONE, ACK_REARMED, ACK_ERROR, ACK_COUNT };
static const char *const ack_names[ACK_COUNT] = {"removed", "gone", "rearmed", "error"};

/* ------------------------------------------------------------------------
 * Types
 * --------------------------------------------------------------------- */

/* Per ledger (route name + ledger key), kept for the ledger's life so that
 * tickets in flight across a reload keep a valid ledger name and counters. */
struct lstats {
    struct lstats *next;
    char *route;
    char *lkey; /* the ledger's key */
    size_t lkey_len;
    eb_series_t *pending, *overdue, *recovered, *payload_missing;
    eb_series_t *acks[ACK_COUNT];
    eb_series_t *claims[2][ST_COUNT];
    eb_series_t *observed_record, *observed_cancel;
    /* accumulated by the current sweep cycle over its databases */
    int64_t cyc_pending, cyc_overdue;
    bool cyc_seen;
};

/* Per route of the current configuration (index = route index). */
struct lroute {
    const struct eb_config_route *cfg;
    struct lstats *ls;
    bool active;   /* ledger != off or a payload: takes the live path */
    bool ledgered; /* ledger != off: swept, acknowledged */
    bool observed;
    char *scan_match; /* SCAN MATCH pattern of the route's literal prefix */
    size_t scan_match_len;
};

enum tstate { T_CLAIM_QUEUED, T_CLAIMING, T_PRODUCING, T_ACK_QUEUED, T_ACKING, T_ACK_WAIT };

struct eb_ledger_ticket {
    struct eb_ledger_ticket *hnext; /* hash chain */
    struct eb_ledger_ticket *wnext; /* ack_wait list */
    struct lstats *ls;
    uint64_t hash;
    int db;
    enum tstate state;
    bool recovered;
    bool has_payload;
    int64_t deadline_ms; /* < 0: no entry (only a payload to delete) */
    int64_t recv_mono_ns, recv_real_us;
    int64_t claimed_ns; /* last claim or renewal */
    char *pkey;         /* payload key, or NULL */
    size_t pkey_len;
    size_t key_len;
    char key[]; /* the timer key */
};

enum req_kind {
    R_AUTH,
    R_SETNAME,
    R_SELECT,
    R_LOAD,
    R_CLAIM,
    R_COLLECT,
    R_ACK,
    R_DEL_PAYLOAD,
    R_DUE,
    R_INFO_SWEEP,
    R_INFO_SCAN,
    R_SCAN,
    R_OBSERVE,
    R_DROP,
    R_RENEW,
    R_TOUCH,
    R_PING,
};

static const char *const req_names[] = {
    "AUTH",
    "CLIENT SETNAME",
    "SELECT",
    "FUNCTION LOAD",
    "FCALL eb1_claim",
    "FCALL eb1_collect",
    "FCALL eb1_ack",
    "DEL payload",
    "FCALL eb1_due",
    "INFO keyspace",
    "INFO keyspace",
    "SCAN",
    "FCALL eb1_observe",
    "FCALL eb1_drop",
    "FCALL eb1_renew",
    "FCALL eb1_collect touch",
    "PING",
};

/* One command in flight, in send order. Owned by the FIFO; freed after its
 * reply (or NULL) was handled. */
struct lreq {
    struct eb_pending link; /* first: l->pending hands it back as a struct lreq * */
    enum req_kind kind;
    unsigned gen;            /* R_DUE, R_SCAN, R_INFO_*: the cycle it belongs to */
    eb_ledger_ticket_t *t;   /* R_CLAIM, R_COLLECT, R_DEL_PAYLOAD */
    eb_ledger_ticket_t **ts; /* R_ACK, R_CLAIM: the batch, owned */
    size_t nts;
    struct lstats *ls; /* R_OBSERVE, R_DROP */
};

/* One walk over every (database, route) pair of one kind of route, one
 * request in flight at a time: the sweep's cycle and the observed-mode
 * scan are both one. The databases are the configured ones, or those INFO
 * keyspace lists when the bridge watches them all. gen tells the replies
 * of an ended pass (reload, reconnect) from those of the running one.
 * Whoever moves ri on resets its own position within a route. */
struct pass {
    bool running, again;
    unsigned gen;
    int64_t start_ns;
    int *dbs;
    size_t ndbs, di, ri;
};

enum pass_kind {
    PASS_LEDGERED, /* the sweep: every ledgered route */
    PASS_OBSERVED  /* the scan: observed routes */
};

/* A sweep cycle: every ledgered route in every database, page by page. */
struct sweep {
    struct pass p;
    size_t offset; /* into the route's overdue entries */
    bool capped;   /* the ticket bound was hit this cycle */
};

/* An observed-mode SCAN of every observed route's prefix in every db. */
struct scan {
    struct pass p;
    char cursor[32]; /* SCAN's, within the route */
    uint64_t seen, recorded;
};

struct eb_ledger {
    struct event_base *base;
    eb_log_t *log;
    eb_metrics_t *metrics;
    eb_ledger_emit_cb *emit;
    void *emit_opaque;
    const struct eb_config *cfg; /* borrowed */

    /* connection settings, copied at creation */
    char *host;
    int port;
    char *username;
    char *password; /* never logged */
    bool all_databases;
    int *databases;
    size_t ndatabases;
    int connect_timeout_ms, reply_timeout_ms;

    /* from cfg->ledger, refreshed by set_config */
    int sweep_interval_ms, sweep_grace_ms, claim_ttl_ms, remember_ms;
    size_t batch, max_tickets;

    struct lroute *routes;
    size_t nroutes;
    eb_router_t *payload_router; /* rule i: route i with its payload template as key */
    struct lstats *all_stats;
    int id_expire, id_del, id_persist;

    /* connection */
    eb_redis_conn_t *conn;
    bool connecting, ready, failing, started, stopped, destroying;
    int conn_db;
    int64_t conn_up_ns;
    int64_t last_sent_ns;
    int64_t last_tick_ns;
    struct eb_pending_queue pending; /* sent, reply awaited, oldest first */
    int cb_depth;
    eb_redis_session_t *sess; /* connect timeout, deferred close, reconnect with backoff */
    struct event *ev_tick, *ev_sweep, *ev_renew, *ev_ack, *ev_claim;

    /* tickets */
    eb_ledger_ticket_t **buckets;
    size_t nbuckets, ntickets;
    eb_ledger_ticket_t *ack_wait;  /* Redis away: sent on reconnect */
    eb_ledger_ticket_t *ack_queue; /* sent at the next turn of the loop */
    size_t nack_queue;
    bool ack_scheduled;
    eb_ledger_ticket_t *claim_queue; /* live claims, sent at the next turn */
    size_t nclaim_queue;
    bool claim_scheduled;

    struct sweep sw;
    struct scan sc;
    bool source_subscribed;
    bool scan_wanted; /* run a scan as soon as both the source and the ledger are up */

    struct eb_buf kbuf, pbuf, jbuf; /* scratch: ledger key, payload key, payload JSON */
    int64_t last_log_ms[8];

    /* metrics */
    eb_metric_t *f_pending, *f_overdue, *f_recovered, *f_acks, *f_claims, *f_missing, *f_observed;
    eb_series_t *m_sweep, *m_skipped, *m_loads_ok, *m_loads_failed;
    uint64_t total_recovered, total_acked, total_sweeps;
};

/* ------------------------------------------------------------------------
 * Small helpers
 * --------------------------------------------------------------------- */

/* Log at most once per LOG_EVERY_MS per slot: errors of Redis tend to come
 * in floods (one per command) when they come. */
static bool log_allow(eb_ledger_t *l, unsigned slot) {
    int64_t now = eb_mono_ns() / 1000000;
    if (slot >= sizeof(l->last_log_ms) / sizeof(l->last_log_ms[0]))
        return true;
    if (l->last_log_ms[slot] && now - l->last_log_ms[slot] < LOG_EVERY_MS)
        return false;
    l->last_log_ms[slot] = now;
    return true;
}

enum { LOGSLOT_CLAIM, LOGSLOT_COLLECT, LOGSLOT_ACK, LOGSLOT_DUE, LOGSLOT_SCAN, LOGSLOT_OBSERVE };

/* ------------------------------------------------------------------------
 * Pure helpers
 * --------------------------------------------------------------------- */

void eb_ledger_key(struct eb_buf *out, const char *prefix, const char *route) {
    if (prefix)
        eb_buf_puts(out, prefix);
    eb_buf_putc(out, '{');
    eb_buf_puts(out, route);
    eb_buf_putc(out, '}');
}

void eb_ledger_scan_pattern(struct eb_buf *out, const char *prefix, size_t len) {
    for (size_t i = 0; i < len; i++) {
        char c = prefix[i];
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\')
            eb_buf_putc(out, '\\');
        eb_buf_putc(out, c);
    }
    eb_buf_putc(out, '*');
}

/* True when p[0..n) is one JSON text the event encoder embeds (its own
 * check, so the two can never disagree: UTF-8, nesting, syntax). */
static bool json_embeddable(const char *p, size_t n) {
    struct eb_encoded enc;
    struct eb_event ev = {
        .event = "expired",
        .source = "x",
        .deadline_ms = -1,
        .has_payload = true,
        .payload_json = p,
        .payload_len = n,
    };
    eb_event_encoded_init(&enc);
    int rc = eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &enc);
    eb_event_encoded_free(&enc);
    return rc == 0;
}

bool eb_ledger_payload_json(struct eb_buf *out, const char *kind,
                            const struct eb_ledger_bytes *vals, size_t nvals) {
    if (strcmp(kind, "string") == 0 && nvals == 1) {
        const struct eb_ledger_bytes *v = &vals[0];
        if (v->len > 0 && json_embeddable(v->p, v->len)) {
            eb_buf_append(out, v->p, v->len);
        } else if (eb_utf8_valid(v->p, v->len)) {
            eb_json_string(out, v->p, v->len);
        } else {
            eb_buf_puts(out, "{\"base64\":\"");
            eb_buf_put_base64(out, v->p, v->len);
            eb_buf_puts(out, "\"}");
        }
        return true;
    }
    if (strcmp(kind, "hash") == 0 && nvals % 2 == 0) {
        bool utf8 = true;
        for (size_t i = 0; i < nvals && utf8; i++)
            utf8 = eb_utf8_valid(vals[i].p, vals[i].len);
        eb_buf_puts(out, utf8 ? "{" : "{\"base64\":{");
        for (size_t i = 0; i < nvals; i += 2) {
            if (i)
                eb_buf_putc(out, ',');
            for (size_t j = i; j < i + 2; j++) {
                if (utf8) {
                    eb_json_string(out, vals[j].p, vals[j].len);
                } else {
                    eb_buf_putc(out, '"');
                    eb_buf_put_base64(out, vals[j].p, vals[j].len);
                    eb_buf_putc(out, '"');
                }
                if (j == i)
                    eb_buf_putc(out, ':');
            }
        }
        eb_buf_puts(out, utf8 ? "}" : "}}");
        return true;
    }
    eb_buf_puts(out, "null");
    return false;
}

/* ------------------------------------------------------------------------
 * Tickets: a hash table keyed by (ledger, db, key)
 * --------------------------------------------------------------------- */

static uint64_t ticket_hash(const struct lstats *ls, int db, const void *key, size_t len) {
    uint64_t seed = (uint64_t)(uintptr_t)ls ^ ((uint64_t)(uint32_t)db << 32);
    return XXH3_64bits_withSeed(key, len, seed);
}

static eb_ledger_ticket_t *ticket_find(const eb_ledger_t *l, const struct lstats *ls, int db,
                                       const void *key, size_t len) {
    if (!l->nbuckets)
        return NULL;
    uint64_t h = ticket_hash(ls, db, key, len);
    for (eb_ledger_ticket_t *t = l->buckets[h & (l->nbuckets - 1)]; t; t = t->hnext) {
        if (t->hash == h && t->ls == ls && t->db == db && t->key_len == len &&
            memcmp(t->key, key, len) == 0)
            return t;
    }
    return NULL;
}

/* Double the table when it holds more tickets than buckets. */
static bool ticket_grow(eb_ledger_t *l) {
    size_t n = l->nbuckets ? l->nbuckets * 2 : 64;
    eb_ledger_ticket_t **b = calloc(n, sizeof(*b));
    if (!b)
        return false;
    for (size_t i = 0; i < l->nbuckets; i++) {
        eb_ledger_ticket_t *t = l->buckets[i];
        while (t) {
            eb_ledger_ticket_t *next = t->hnext;
            t->hnext = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
            t = next;
        }
    }
    free(l->buckets);
    l->buckets = b;
    l->nbuckets = n;
    return true;
}

/* A new ticket in the table, or NULL when out of memory. */
static eb_ledger_ticket_t *ticket_new(eb_ledger_t *l, struct lstats *ls, int db, const void *key,
                                      size_t len) {
    if (l->ntickets >= l->nbuckets && !ticket_grow(l) && !l->nbuckets)
        return NULL;
    eb_ledger_ticket_t *t = calloc(1, sizeof(*t) + len + 1);
    if (!t)
        return NULL;
    t->ls = ls;
    t->db = db;
    t->key_len = len;
    memcpy(t->key, key, len);
    t->deadline_ms = -1;
    t->hash = ticket_hash(ls, db, key, len);
    eb_ledger_ticket_t **slot = &l->buckets[t->hash & (l->nbuckets - 1)];
    t->hnext = *slot;
    *slot = t;
    l->ntickets++;
    return t;
}

static void ticket_free(eb_ledger_t *l, eb_ledger_ticket_t *t) {
    eb_ledger_ticket_t **pp = &l->buckets[t->hash & (l->nbuckets - 1)];
    while (*pp && *pp != t)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = t->hnext;
        l->ntickets--;
    }
    free(t->pkey);
    free(t);
}

/* ------------------------------------------------------------------------
 * Connection
 * --------------------------------------------------------------------- */

static void session_fail(eb_ledger_t *l, const char *msg, const char *detail);

_Static_assert(offsetof(struct lreq, link) == 0, "struct lreq must start with its link");

/* After the connection was freed: hiredis answered every pending command
 * with NULL, so whatever is left was never sent. */
static void queue_free(eb_ledger_t *l) {
    struct lreq *r;
    while ((r = (struct lreq *)eb_redis_pending_pop(&l->pending))) {
        free(r->ts);
        free(r);
    }
}

static struct lreq *send_raw(eb_ledger_t *l, enum req_kind kind, int argc, const char **argv,
                             const size_t *argvlen) {
    if (!l->conn || l->failing)
        return NULL;
    struct lreq *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->kind = kind;
    if (eb_redis_conn_command(l->conn, r, argc, argv, argvlen) != 0) {
        free(r);
        return NULL;
    }
    l->last_sent_ns = eb_mono_ns();
    eb_redis_pending_push(&l->pending, &r->link, l->last_sent_ns);
    return r;
}

/* Queue a command to run in database db (< 0: whichever is selected).
 * Returns the request or NULL when it could not be sent (the caller keeps
 * ownership of whatever it meant to attach). */
static struct lreq *send_cmd(eb_ledger_t *l, enum req_kind kind, int db, int argc,
                             const char **argv, const size_t *argvlen) {
    if (!l->conn || l->failing)
        return NULL;
    if (db >= 0 && db != l->conn_db) {
        struct eb_redis_argv sel;
        eb_redis_argv_init(&sel);
        eb_redis_argv_add_str(&sel, "SELECT");
        eb_redis_argv_add_i64(&sel, db);
        struct lreq *r = send_raw(l, R_SELECT, sel.argc, sel.argv, sel.argvlen);
        eb_redis_argv_free(&sel);
        if (!r) {
            session_fail(l, "redis command could not be queued (ledger)", "SELECT");
            return NULL;
        }
        l->conn_db = db;
    }
    return send_raw(l, kind, argc, argv, argvlen);
}

/* Start a as a call of the library: FCALL fn numkeys <ledger key>; the
 * caller adds the other keys, then the arguments. */
static void fcall_head(struct eb_redis_argv *a, const char *fn, size_t numkeys,
                       const struct lstats *ls) {
    eb_redis_argv_init(a);
    eb_redis_argv_add_str(a, "FCALL");
    eb_redis_argv_add_str(a, fn);
    eb_redis_argv_add_size(a, numkeys);
    eb_redis_argv_add_bytes(a, ls->lkey, ls->lkey_len);
}

/* send_cmd() for a built argument list, which it frees: NULL also when the
 * list ran out of memory while being built. */
static struct lreq *send_args(eb_ledger_t *l, enum req_kind kind, int db, struct eb_redis_argv *a) {
    struct lreq *r =
        eb_redis_argv_ok(a) ? send_cmd(l, kind, db, a->argc, a->argv, a->argvlen) : NULL;
    eb_redis_argv_free(a);
    return r;
}

/* Condemn the session: sess closes it once control is back in the loop
 * (hiredis must not see its context freed inside its callback). */
static void session_fail(eb_ledger_t *l, const char *msg, const char *detail) {
    if (l->failing || !l->conn || l->destroying)
        return;
    l->failing = true;
    l->ready = false;
    eb_log(l->log, EB_LOG_WARN, msg, eb_lf_str("detail", detail ? detail : ""),
           eb_lf_str("host", l->host), eb_lf_int("port", l->port),
           eb_lf_int("tickets", (int64_t)l->ntickets));
    eb_redis_session_condemn(l->sess);
}

static void sweep_abort(eb_ledger_t *l);
static void scan_abort(eb_ledger_t *l, bool again);

/* Close the connection (never from inside its callbacks): pending requests
 * see NULL replies now, which frees claims in progress and parks
 * acknowledgements until the next session. */
static void session_close(eb_ledger_t *l) {
    eb_redis_conn_t *c = l->conn;
    l->conn = NULL;
    l->ready = l->connecting = l->failing = false;
    sweep_abort(l);
    scan_abort(l, true);
    eb_redis_conn_destroy(c);
    queue_free(l);
}

static const struct eb_redis_conn_handlers conn_handlers;

/* FUNCTION LOAD REPLACE <the embedded library>, into a (initialised here):
 * on every connect, and for `expiry-bridge functions load`. */
static void function_load_args(struct eb_redis_argv *a) {
    size_t len;
    const char *lib = eb_ledger_library(&len);
    eb_redis_argv_init(a);
    eb_redis_argv_add_str(a, "FUNCTION");
    eb_redis_argv_add_str(a, "LOAD");
    eb_redis_argv_add_str(a, "REPLACE");
    eb_redis_argv_add_bytes(a, lib, len);
}

static void session_open(eb_ledger_t *l) {
    char err[256];
    l->conn = eb_redis_conn_new(l->base, l->host, l->port, &conn_handlers, l, err, sizeof(err));
    if (!l->conn) {
        eb_log(l->log, EB_LOG_WARN, "ledger: redis connect failed", eb_lf_str("detail", err),
               eb_lf_str("host", l->host), eb_lf_int("port", l->port));
        eb_redis_session_retry(l->sess);
        return;
    }
    l->connecting = true;
    l->failing = l->ready = false;
    l->conn_db = 0;
    l->conn_up_ns = 0;
    eb_redis_session_opening(l->sess, l->connect_timeout_ms);
    if (l->password) {
        struct lreq *r = calloc(1, sizeof(*r));
        if (!r || eb_redis_conn_auth(l->conn, r, l->username, l->password) != 0) {
            free(r);
            session_fail(l, "ledger: redis connect failed", "AUTH could not be queued");
            return;
        }
        r->kind = R_AUTH;
        eb_redis_pending_push(&l->pending, &r->link, eb_mono_ns());
    }
    const char *name[] = {"CLIENT", "SETNAME", "expiry-bridge:ledger"};
    struct eb_redis_argv load;
    function_load_args(&load);
    if (!send_raw(l, R_SETNAME, 3, name, NULL) ||
        !send_raw(l, R_LOAD, load.argc, load.argv, load.argvlen))
        session_fail(l, "ledger: redis connect failed", "commands could not be queued");
    eb_redis_argv_free(&load);
}

/* The session lifecycle's callbacks (redis_session.h). A ledger never
 * stops reconnecting before it is destroyed: acknowledgements still go out
 * during a drain. @locality loop thread (libevent timers of sess, outside
 * hiredis). */
static void sess_open(void *opaque) {
    session_open(opaque);
}

static void sess_close(void *opaque) {
    session_close(opaque);
}

static void sess_timed_out(const char *detail, void *opaque) {
    session_fail(opaque, "ledger: redis connect timed out", detail);
}

static const struct eb_redis_session_handlers sess_handlers = {
    .open = sess_open,
    .close = sess_close,
    .timed_out = sess_timed_out,
    .retrying = NULL, /* not logged: session_fail() already said why */
};

/* A reply overdue by more than the heartbeat timeout: the connection is
 * dead even if TCP has not said so. @locality loop thread (libevent timer). */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    eb_ledger_t *l = arg;
    int64_t now = eb_mono_ns();
    /* A tick much later than scheduled means this loop was stalled:
     * replies may be sitting unread in the socket, so judge nothing now. */
    bool stalled = l->last_tick_ns && now - l->last_tick_ns > 2 * (int64_t)TICK_MS * 1000000;
    l->last_tick_ns = now;
    if (!l->conn || l->failing || !l->conn_up_ns || stalled)
        return;
    if (!l->pending.head) {
        /* Idle (no ledgered route sweeps, nothing expires): a PING keeps
         * proving the connection alive, so the next claim does not find it
         * dead. */
        if (l->ready && eb_mono_ns() - l->last_sent_ns > IDLE_PING_NS) {
            const char *ping[] = {"PING"};
            (void)send_raw(l, R_PING, 1, ping, NULL);
        }
        return;
    }
    const struct lreq *late = (const struct lreq *)eb_redis_pending_overdue(
        &l->pending, now, l->conn_up_ns, (int64_t)l->reply_timeout_ms * 1000000);
    if (late) {
        char detail[96];
        snprintf(detail, sizeof(detail), "%s reply overdue by more than %d ms",
                 req_names[late->kind], l->reply_timeout_ms);
        session_fail(l, "ledger: redis connection dead", detail);
    }
}

/* @locality loop thread, inside hiredis. */
static void conn_on_connect(eb_redis_conn_t *c, bool ok, const char *err, void *opaque) {
    eb_ledger_t *l = opaque;
    l->cb_depth++;
    if (!ok) {
        session_fail(l, "ledger: redis connect failed", err);
    } else {
        l->conn_up_ns = eb_mono_ns();
        eb_redis_session_connected(l->sess);
    }
    l->cb_depth--;
}

/* @locality loop thread, inside hiredis. */
static void conn_on_disconnect(eb_redis_conn_t *c, const char *err, void *opaque) {
    eb_ledger_t *l = opaque;
    l->cb_depth++;
    session_fail(l, "ledger: redis connection lost", err);
    l->cb_depth--;
}

/* ------------------------------------------------------------------------
 * Metrics
 * --------------------------------------------------------------------- */

static double gauge_tickets(void *opaque) {
    return (double)((eb_ledger_t *)opaque)->ntickets;
}

static double gauge_connected(void *opaque) {
    return ((eb_ledger_t *)opaque)->ready ? 1 : 0;
}

static int register_metrics(eb_ledger_t *l) {
    eb_metrics_t *m = l->metrics;
    l->f_pending = eb_metrics_register(m, EB_METRIC_GAUGE, "eb_ledger_pending",
                                  "Timers in the ledger (armed, not yet confirmed by Kafka), as "
                                  "of the last sweep.",
                                  "route", NULL, 0);
    l->f_overdue = eb_metrics_register(m, EB_METRIC_GAUGE, "eb_ledger_overdue",
                                  "Ledger timers past their deadline and not yet confirmed by "
                                  "Kafka, as of the last sweep.",
                                  "route", NULL, 0);
    l->f_recovered = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_ledger_recovered_total",
                                    "Timers delivered by the sweep (delivery: recovered) and "
                                    "confirmed by Kafka.",
                                    "route", NULL, 0);
    l->f_acks = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_ledger_acks_total",
                               "Acknowledgements after Kafka confirmed a timer: removed (the "
                               "entry went), gone (already removed), rearmed (the entry now "
                               "holds a later deadline, kept), error.",
                               "route,result", NULL, 0);
    l->f_claims = eb_metrics_register(
        m, EB_METRIC_COUNTER, "eb_ledger_claims_total",
        "Claims of timers by path (live notification, sweep) and result: owed (produced), busy "
        "(held by another claim), done (delivered already), changed (a later timer of the key), "
        "unknown (no ledger entry: produced without deadline), persisted/moved (the key lost or "
        "changed its TTL outside the library), error.",
        "route,path,result", NULL, 0);
    l->f_missing = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_ledger_payload_missing_total",
                                  "Timers produced with payload: null because the companion key "
                                  "did not exist (or was not a string or hash).",
                                  "route", NULL, 0);
    l->f_observed = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_ledger_observed_total",
                                   "Observed mode: deadlines recorded (record) and timers "
                                   "forgotten on del/persist (cancel).",
                                   "route,op", NULL, 0);
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
        "FUNCTION LOAD of the eb_timers library on (re)connect, by result.", "result", NULL, 0);
    if (!l->f_pending || !l->f_overdue || !l->f_recovered || !l->f_acks || !l->f_claims ||
        !l->f_missing || !l->f_observed || !sweep || !skipped || !loads)
        return EB_ENOMEM;
    const char *ok[] = {"ok"}, *failed[] = {"failed"};
    l->m_sweep = eb_metrics_series0(sweep);
    l->m_skipped = eb_metrics_series0(skipped);
    l->m_loads_ok = eb_metrics_series(loads, ok);
    l->m_loads_failed = eb_metrics_series(loads, failed);
    if (!eb_metrics_register_gauge_fn(m, "eb_ledger_inflight",
                                 "Timers claimed by this bridge and not yet acknowledged in "
                                 "Redis.",
                                 gauge_tickets, l) ||
        !eb_metrics_register_gauge_fn(m, "eb_ledger_connected",
                                 "1 while the ledger's Redis connection is up and the library "
                                 "loaded, else 0.",
                                 gauge_connected, l))
        return EB_ENOMEM;
    return 0;
}

/* The stats of (route, ledger key), created on first use. */
static struct lstats *get_stats(eb_ledger_t *l, const char *route, const char *lkey,
                                size_t lkey_len) {
    for (struct lstats *s = l->all_stats; s; s = s->next) {
        if (strcmp(s->route, route) == 0 && s->lkey_len == lkey_len &&
            memcmp(s->lkey, lkey, lkey_len) == 0)
            return s;
    }
    struct lstats *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->route = strdup(route);
    s->lkey = malloc(lkey_len + 1);
    if (!s->route || !s->lkey) {
        free(s->route);
        free(s->lkey);
        free(s);
        return NULL;
    }
    memcpy(s->lkey, lkey, lkey_len);
    s->lkey[lkey_len] = '\0';
    s->lkey_len = lkey_len;
    const char *r[] = {route};
    s->pending = eb_metrics_series(l->f_pending, r);
    s->overdue = eb_metrics_series(l->f_overdue, r);
    s->recovered = eb_metrics_series(l->f_recovered, r);
    s->payload_missing = eb_metrics_series(l->f_missing, r);
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
 * Producing a claimed timer
 * --------------------------------------------------------------------- */

/* Render the payload key of t's route into t->pkey (nothing when the route
 * has none or its pattern no longer matches the key). */
static void set_payload_key(eb_ledger_t *l, eb_ledger_ticket_t *t, size_t route) {
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
    t->pkey = malloc(l->pbuf.len + 1);
    if (!t->pkey)
        return;
    memcpy(t->pkey, l->pbuf.data, l->pbuf.len);
    t->pkey_len = l->pbuf.len;
}

/* Hand a claimed timer to the pipeline. vals: the payload part of the
 * reply (kind, values...). The ticket may be gone when this returns. */
static void emit(eb_ledger_t *l, eb_ledger_ticket_t *t, const redisReply *const *vals,
                 size_t nvals) {
    struct eb_ledger_timer tm = {
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
        if (eb_ledger_payload_json(&l->jbuf, kind, vb, n)) {
            if (eb_buf_ok(&l->jbuf)) {
                tm.payload_json = l->jbuf.data;
                tm.payload_len = l->jbuf.len;
            }
        } else {
            eb_metrics_inc(t->ls->payload_missing);
        }
        if (vb != b)
            free(vb);
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
 * Batched FCALLs: eb1_ack, eb1_claim, eb1_renew
 * --------------------------------------------------------------------- */

static int cmp_ticket(const void *a, const void *b) {
    const eb_ledger_ticket_t *x = *(eb_ledger_ticket_t *const *)a;
    const eb_ledger_ticket_t *y = *(eb_ledger_ticket_t *const *)b;
    if (x->ls != y->ls)
        return (uintptr_t)x->ls < (uintptr_t)y->ls ? -1 : 1;
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
        while (j < n && j - i < max && ts[j]->ls == ts[i]->ls && ts[j]->db == ts[i]->db)
            j++;
        send(l, ts + i, j - i);
        i = j;
    }
}

/* The head eb1_ack and eb1_claim share: the ledger key and the payload
 * keys of ts[0..n) that have one (key slots 2, 3, ... in ts order), then
 * arg. The caller appends one group per timer. */
static void batch_head(struct eb_redis_argv *a, const char *fn, eb_ledger_ticket_t *const *ts,
                       size_t n, int64_t arg) {
    size_t npk = 0;
    for (size_t i = 0; i < n; i++)
        npk += ts[i]->pkey != NULL;
    fcall_head(a, fn, 1 + npk, ts[0]->ls);
    for (size_t i = 0; i < n; i++) {
        if (ts[i]->pkey)
            eb_redis_argv_add_bytes(a, ts[i]->pkey, ts[i]->pkey_len);
    }
    eb_redis_argv_add_i64(a, arg);
}

/* Send a batch built on batch_head() (freed here) for ts[0..n), which then
 * belong to the request, in state st. False when nothing was sent: the
 * caller still holds the tickets. */
static bool batch_send(eb_ledger_t *l, enum req_kind kind, struct eb_redis_argv *a,
                       eb_ledger_ticket_t **ts, size_t n, enum tstate st) {
    eb_ledger_ticket_t **owned = malloc(n * sizeof(*owned));
    if (!owned) {
        eb_redis_argv_free(a);
        return false;
    }
    struct lreq *r = send_args(l, kind, ts[0]->db, a);
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

/* ------------------------------------------------------------------------
 * Acknowledgements
 * --------------------------------------------------------------------- */

/* Redis is away: keep it for the next session (the ticket stays in the
 * table, so the sweep does not claim it again meanwhile). */
static void ack_park(eb_ledger_t *l, eb_ledger_ticket_t *t) {
    t->state = T_ACK_WAIT;
    t->wnext = l->ack_wait;
    l->ack_wait = t;
}

/* Acknowledgements wait at most one turn of the loop, so that one burst of
 * delivery reports becomes one FCALL per (ledger, db). */
static void ack_queue(eb_ledger_t *l, eb_ledger_ticket_t *t) {
    static const struct timeval zero = {0, 0};
    t->state = T_ACK_QUEUED;
    t->wnext = l->ack_queue;
    l->ack_queue = t;
    l->nack_queue++;
    if (!l->ack_scheduled) {
        l->ack_scheduled = true;
        evtimer_add(l->ev_ack, &zero);
    }
}

/* A timer without a ledger entry: only its payload to delete. */
static void ack_del_payload(eb_ledger_t *l, eb_ledger_ticket_t *t) {
    struct lreq *r = NULL;
    if (l->ready) {
        struct eb_redis_argv a;
        eb_redis_argv_init(&a);
        eb_redis_argv_add_str(&a, "DEL");
        eb_redis_argv_add_bytes(&a, t->pkey, t->pkey_len);
        r = send_args(l, R_DEL_PAYLOAD, t->db, &a);
    }
    if (!r) {
        ack_park(l, t);
        return;
    }
    r->t = t;
    t->state = T_ACKING;
}

/* One FCALL eb1_ack for ts[0..n) (one ledger, one db): remember_ms, then
 * (member, deadline, payload slot or 0) per timer. */
static void ack_batch(eb_ledger_t *l, eb_ledger_ticket_t **ts, size_t n) {
    struct eb_redis_argv a;
    batch_head(&a, "eb1_ack", ts, n, l->remember_ms);
    for (size_t i = 0, slot = 2; i < n; i++) {
        eb_redis_argv_add_bytes(&a, ts[i]->key, ts[i]->key_len);
        eb_redis_argv_add_i64(&a, ts[i]->deadline_ms);
        eb_redis_argv_add_size(&a, ts[i]->pkey ? slot++ : 0);
    }
    if (!batch_send(l, R_ACK, &a, ts, n, T_ACKING)) {
        for (size_t i = 0; i < n; i++)
            ack_park(l, ts[i]);
    }
}

/* Send what ack_queue() collected. @locality loop thread (libevent timer). */
static void on_ack_timer(evutil_socket_t fd, short what, void *arg) {
    eb_ledger_t *l = arg;
    eb_ledger_ticket_t *q = l->ack_queue;
    size_t n = l->nack_queue;
    l->ack_queue = NULL;
    l->nack_queue = 0;
    l->ack_scheduled = false;
    eb_ledger_ticket_t **ts = l->ready ? malloc(n * sizeof(*ts)) : NULL;
    size_t m = 0;
    while (q) {
        eb_ledger_ticket_t *next = q->wnext;
        q->wnext = NULL;
        if (!ts)
            ack_park(l, q);
        else if (q->deadline_ms < 0)
            ack_del_payload(l, q);
        else
            ts[m++] = q;
        q = next;
    }
    if (!ts)
        return;
    send_batches(l, ts, m, ACK_BATCH, ack_batch);
    free(ts);
}

/* The connection is back: send what waited. */
static void ack_flush(eb_ledger_t *l) {
    eb_ledger_ticket_t *t = l->ack_wait;
    l->ack_wait = NULL;
    while (t) {
        eb_ledger_ticket_t *next = t->wnext;
        t->wnext = NULL;
        ack_queue(l, t);
        t = next;
    }
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
    if (res == ACK_ERROR && log_allow(l, LOGSLOT_ACK))
        eb_log(l->log, EB_LOG_ERROR,
               "ledger: acknowledgement refused; the timer stays in the ledger and will be "
               "delivered again",
               eb_lf_str("route", t->ls->route), eb_lf_bytes("key", t->key, t->key_len),
               eb_lf_str("detail", detail));
    ticket_free(l, t);
}

static void on_ack(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    if (req->kind == R_DEL_PAYLOAD) {
        if (!r)
            ack_park(l, req->t); /* the connection is going away */
        else
            ticket_free(l, req->t);
        return;
    }
    bool ok = r && !eb_redis_reply_is_error(r) && r->type == REDIS_REPLY_ARRAY && r->elements == req->nts;
    for (size_t i = 0; i < req->nts; i++) {
        if (!r)
            ack_park(l, req->ts[i]);
        else
            ack_result(l, req->ts[i], ok ? r->element[i] : NULL,
                       eb_redis_reply_is_error(r) ? eb_redis_reply_text(r) : "unexpected reply");
    }
}

void eb_ledger_done(eb_ledger_t *l, eb_ledger_ticket_t *t, bool delivered) {
    if (!t)
        return;
    if (!delivered) {
        /* Its claim runs out after claim_ttl; then the sweep retries. */
        ticket_free(l, t);
        return;
    }
    if (t->recovered) {
        eb_metrics_inc(t->ls->recovered);
        l->total_recovered++;
    }
    if (t->deadline_ms < 0 && !t->pkey) {
        ticket_free(l, t);
        return;
    }
    ack_queue(l, t);
}

/* ------------------------------------------------------------------------
 * Live path
 * --------------------------------------------------------------------- */

/* Payload part of a claim reply: elements from index 2 on. */
static void claim_payload(const redisReply *r, const redisReply *const **vals, size_t *n) {
    *vals = r->elements > 2 ? (const redisReply *const *)r->element + 2 : NULL;
    *n = r->elements > 2 ? r->elements - 2 : 0;
}

/* The status of a claim/collect reply, ST_ERROR when malformed. */
static int claim_status(const redisReply *r, int64_t *deadline) {
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

static bool library_missing(const redisReply *r) {
    return eb_redis_reply_is_error(r) && strstr(eb_redis_reply_text(r), "Function not found") != NULL;
}

static void on_claim(eb_ledger_t *l, eb_ledger_ticket_t *t, const redisReply *r, bool collect) {
    if (!r) {
        ticket_free(l, t); /* the entry stays: a later sweep takes it */
        return;
    }
    int64_t dl = -1;
    int st = claim_status(r, &dl);
    eb_metrics_inc(t->ls->claims[collect ? PATH_SWEEP : PATH_LIVE][st]);
    if (st == ST_ERROR) {
        if (log_allow(l, collect ? LOGSLOT_COLLECT : LOGSLOT_CLAIM))
            eb_log(l->log, EB_LOG_ERROR, "ledger: claim refused by redis",
                   eb_lf_str("route", t->ls->route), eb_lf_bytes("key", t->key, t->key_len),
                   eb_lf_str("detail", eb_redis_reply_is_error(r) ? eb_redis_reply_text(r) : "unexpected reply"));
        if (library_missing(r))
            session_fail(l,
                         "ledger: the function library vanished (FUNCTION FLUSH?); "
                         "reconnecting to load it again",
                         eb_redis_reply_text(r));
        ticket_free(l, t);
        return;
    }
    if (st == ST_OWED || (st == ST_UNKNOWN && !collect)) {
        const redisReply *const *vals;
        size_t n;
        t->deadline_ms = st == ST_OWED ? dl : -1;
        claim_payload(r, &vals, &n);
        emit(l, t, vals, n);
        return;
    }
    ticket_free(l, t);
}

/* One FCALL eb1_claim for ts[0..n) (one ledger, one db): claim_ttl_ms,
 * then (member, payload slot or 0) per timer. */
static void claim_batch(eb_ledger_t *l, eb_ledger_ticket_t **ts, size_t n) {
    struct eb_redis_argv a;
    batch_head(&a, "eb1_claim", ts, n, l->claim_ttl_ms);
    for (size_t i = 0, slot = 2; i < n; i++) {
        eb_redis_argv_add_bytes(&a, ts[i]->key, ts[i]->key_len);
        eb_redis_argv_add_size(&a, ts[i]->pkey ? slot++ : 0);
    }
    if (!batch_send(l, R_CLAIM, &a, ts, n, T_CLAIMING)) {
        for (size_t i = 0; i < n; i++)
            ticket_free(l, ts[i]); /* the entries stay: a later sweep takes them */
    }
}

/* Send what eb_ledger_on_expired() collected during one turn of the loop:
 * Redis expires keys in bursts, and one FCALL per burst costs it a
 * fraction of one per timer. @locality loop thread (libevent timer). */
static void on_claim_timer(evutil_socket_t fd, short what, void *arg) {
    eb_ledger_t *l = arg;
    eb_ledger_ticket_t *q = l->claim_queue;
    size_t n = l->nclaim_queue, m = 0;
    l->claim_queue = NULL;
    l->nclaim_queue = 0;
    l->claim_scheduled = false;
    eb_ledger_ticket_t **ts = l->ready ? malloc(n * sizeof(*ts)) : NULL;
    while (q) {
        eb_ledger_ticket_t *next = q->wnext;
        q->wnext = NULL;
        if (ts) {
            ts[m++] = q;
        } else {
            eb_metrics_inc(l->m_skipped);
            ticket_free(l, q);
        }
        q = next;
    }
    if (!ts)
        return;
    send_batches(l, ts, m, CLAIM_BATCH, claim_batch);
    free(ts);
}

static void on_claims(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    bool ok = r && !eb_redis_reply_is_error(r) && r->type == REDIS_REPLY_ARRAY && r->elements == req->nts;
    for (size_t i = 0; i < req->nts; i++)
        on_claim(l, req->ts[i], !r ? NULL : ok ? r->element[i] : r, false);
}

void eb_ledger_on_expired(eb_ledger_t *l, size_t route, const struct eb_notification *n) {
    static const struct timeval zero = {0, 0};
    if (l->stopped || route >= l->nroutes || !l->routes[route].active)
        return;
    struct lroute *lr = &l->routes[route];
    if (!l->ready) {
        eb_metrics_inc(l->m_skipped);
        return;
    }
    if (ticket_find(l, lr->ls, n->db, n->key, n->key_len))
        return; /* this bridge holds it already (its sweep is collecting it) */
    eb_ledger_ticket_t *t = ticket_new(l, lr->ls, n->db, n->key, n->key_len);
    if (!t)
        return; /* out of memory: the sweep will deliver it */
    t->recv_mono_ns = n->recv_mono_ns;
    t->recv_real_us = n->recv_real_us;
    set_payload_key(l, t, route);
    t->state = T_CLAIM_QUEUED;
    t->wnext = l->claim_queue;
    l->claim_queue = t;
    l->nclaim_queue++;
    if (!l->claim_scheduled) {
        l->claim_scheduled = true;
        evtimer_add(l->ev_claim, &zero);
    }
}

/* ------------------------------------------------------------------------
 * Observed mode bookkeeping
 * --------------------------------------------------------------------- */

void eb_ledger_on_bookkeeping(eb_ledger_t *l, size_t route, const struct eb_notification *n) {
    if (l->stopped || route >= l->nroutes || !l->routes[route].observed)
        return;
    struct lroute *lr = &l->routes[route];
    if (!l->ready) {
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
    fcall_head(&a, observe ? "eb1_observe" : "eb1_drop", observe ? 2 : 1, lr->ls);
    eb_redis_argv_add_bytes(&a, n->key, n->key_len);
    struct lreq *r = send_args(l, observe ? R_OBSERVE : R_DROP, n->db, &a);
    if (r)
        r->ls = lr->ls;
}

static void on_observe(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    if (!r)
        return;
    if (eb_redis_reply_is_error(r)) {
        if (log_allow(l, LOGSLOT_OBSERVE))
            eb_log(l->log, EB_LOG_ERROR, "ledger: observed-mode bookkeeping refused by redis",
                   eb_lf_str("detail", eb_redis_reply_text(r)));
        return;
    }
    if (!req->ls)
        return;
    if (req->kind == R_DROP) {
        long long v;
        if (eb_redis_reply_int(r, &v) && v > 0)
            eb_metrics_add(req->ls->observed_cancel, (double)v);
        return;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        long long v;
        if (eb_redis_reply_int(r->element[i], &v) && v >= 0) {
            eb_metrics_inc(req->ls->observed_record);
            l->sc.recorded++;
        }
    }
}

/* ------------------------------------------------------------------------
 * Databases of a cycle
 * --------------------------------------------------------------------- */

/* The databases to sweep or scan: the configured list, or (databases: all)
 * those INFO keyspace reports (parsed from its reply). */
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

/* ------------------------------------------------------------------------
 * Sweep
 * --------------------------------------------------------------------- */

static bool pass_visits(const struct lroute *lr, enum pass_kind kind) {
    return kind == PASS_LEDGERED ? lr->ledgered : lr->observed;
}

static bool any_route(const eb_ledger_t *l, enum pass_kind kind) {
    for (size_t i = 0; i < l->nroutes; i++) {
        if (pass_visits(&l->routes[i], kind))
            return true;
    }
    return false;
}

/* Begin a pass from its first pair. Returns 1 when the databases are known
 * and the first step can be sent, 0 when it waits for the reply to INFO
 * keyspace (sent as info_kind), -1 when nothing could be sent (the caller
 * ends the pass). */
static int pass_begin(eb_ledger_t *l, struct pass *p, enum req_kind info_kind) {
    p->running = true;
    p->again = false;
    p->gen++;
    p->start_ns = eb_mono_ns();
    p->di = p->ri = 0;
    if (l->all_databases) {
        const char *argv[] = {"INFO", "keyspace"};
        struct lreq *r = send_cmd(l, info_kind, -1, 2, argv, NULL);
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
static int pass_on_info(struct pass *p, const struct lreq *req, const redisReply *r) {
    if (req->gen != p->gen || !p->running)
        return 0;
    if (!r || eb_redis_reply_is_error(r))
        return -1;
    p->dbs = dbs_from_info(r, &p->ndbs);
    return p->dbs ? 1 : -1;
}

/* Whether the reply to req belongs to the running pass. */
static bool pass_current(const struct pass *p, const struct lreq *req) {
    return p->running && req->gen == p->gen;
}

/* Skip to the next pair of the pass that is of its kind, from the current
 * one on. False when every pair has been visited. */
static bool pass_seek(const eb_ledger_t *l, struct pass *p, enum pass_kind kind) {
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
static void pass_end(struct pass *p) {
    p->running = false;
    p->gen++;
    free(p->dbs);
    p->dbs = NULL;
}

static void sweep_step(eb_ledger_t *l);

static void sweep_abort(eb_ledger_t *l) {
    pass_end(&l->sw.p);
}

static void sweep_start(eb_ledger_t *l) {
    if (!l->ready || l->stopped)
        return;
    if (l->sw.p.running) {
        l->sw.p.again = true;
        return;
    }
    if (!any_route(l, PASS_LEDGERED))
        return;
    struct sweep *s = &l->sw;
    s->capped = false;
    s->offset = 0;
    for (struct lstats *ls = l->all_stats; ls; ls = ls->next)
        ls->cyc_pending = ls->cyc_overdue = 0, ls->cyc_seen = false;
    int ready = pass_begin(l, &s->p, R_INFO_SWEEP);
    if (ready < 0)
        sweep_abort(l);
    else if (ready > 0)
        sweep_step(l);
}

static void sweep_finish(eb_ledger_t *l) {
    struct sweep *s = &l->sw;
    double secs = (double)(eb_mono_ns() - s->p.start_ns) / 1e9;
    eb_metrics_observe(l->m_sweep, secs);
    l->total_sweeps++;
    for (struct lstats *ls = l->all_stats; ls; ls = ls->next) {
        if (!ls->cyc_seen)
            continue;
        eb_metrics_set(ls->pending, (double)ls->cyc_pending);
        eb_metrics_set(ls->overdue, (double)ls->cyc_overdue);
    }
    bool again = s->p.again;
    sweep_abort(l);
    if (again)
        sweep_start(l);
}

/* Send the next eb1_due of the cycle, or finish it. */
static void sweep_step(eb_ledger_t *l) {
    struct sweep *s = &l->sw;
    if (!pass_seek(l, &s->p, PASS_LEDGERED) || s->capped) {
        sweep_finish(l);
        return;
    }
    struct lstats *ls = l->routes[s->p.ri].ls;
    struct eb_redis_argv a;
    fcall_head(&a, "eb1_due", 1, ls);
    eb_redis_argv_add_size(&a, s->offset);
    eb_redis_argv_add_size(&a, l->batch);
    eb_redis_argv_add_i64(&a, l->sweep_grace_ms);
    struct lreq *r = send_args(l, R_DUE, s->p.dbs[s->p.di], &a);
    if (!r) {
        sweep_abort(l);
        return;
    }
    r->gen = s->p.gen;
}

/* The first pass over an overdue entry only touches its key: a key Redis
 * had not expired yet is expired by the touch and delivered live by its
 * notification (Redis's sampler is slow, the notification is not lost). */
static void sweep_touch(eb_ledger_t *l, struct lstats *ls, int db, const redisReply *member,
                        long long dl) {
    struct eb_redis_argv a;
    fcall_head(&a, "eb1_collect", 2, ls);
    eb_redis_argv_add_bytes(&a, member->str, member->len);
    eb_redis_argv_add_i64(&a, dl);
    eb_redis_argv_add_i64(&a, l->claim_ttl_ms);
    eb_redis_argv_add_str(&a, "touch");
    struct lreq *r = send_args(l, R_TOUCH, db, &a);
    if (r)
        r->ls = ls;
}

/* Claim one overdue entry (unless this bridge holds it already); entries
 * that became overdue since the previous pass (deadline after
 * since_ms, Redis's clock) are only touched. */
static void sweep_collect(eb_ledger_t *l, size_t route, int db, const redisReply *member,
                          const redisReply *deadline, long long since_ms) {
    struct lstats *ls = l->routes[route].ls;
    long long dl;
    if (member->type != REDIS_REPLY_STRING || !eb_redis_reply_int(deadline, &dl))
        return;
    if (ticket_find(l, ls, db, member->str, member->len))
        return;
    if (dl > since_ms) {
        sweep_touch(l, ls, db, member, dl);
        return;
    }
    eb_ledger_ticket_t *t = ticket_new(l, ls, db, member->str, member->len);
    if (!t)
        return;
    t->recovered = true;
    t->deadline_ms = dl;
    set_payload_key(l, t, route);
    struct eb_redis_argv a;
    fcall_head(&a, "eb1_collect", t->pkey ? 3 : 2, ls);
    eb_redis_argv_add_bytes(&a, member->str, member->len);
    if (t->pkey)
        eb_redis_argv_add_bytes(&a, t->pkey, t->pkey_len);
    eb_redis_argv_add_i64(&a, dl);
    eb_redis_argv_add_i64(&a, l->claim_ttl_ms);
    struct lreq *r = send_args(l, R_COLLECT, db, &a);
    if (!r) {
        ticket_free(l, t);
        return;
    }
    r->t = t;
    t->state = T_CLAIMING;
}

static void on_due(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    struct sweep *s = &l->sw;
    if (!pass_current(&s->p, req))
        return; /* a cycle that was aborted (reload, reconnect) */
    if (!r) {
        sweep_abort(l);
        return;
    }
    struct lroute *lr = &l->routes[s->p.ri];
    long long now, pending, overdue, next, more;
    if (eb_redis_reply_is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 5 ||
        !eb_redis_reply_int(r->element[0], &now) || !eb_redis_reply_int(r->element[1], &pending) ||
        !eb_redis_reply_int(r->element[2], &overdue) || !eb_redis_reply_int(r->element[3], &next) ||
        !eb_redis_reply_int(r->element[4], &more)) {
        if (log_allow(l, LOGSLOT_DUE))
            eb_log(l->log, EB_LOG_ERROR, "ledger: sweep step refused by redis",
                   eb_lf_str("route", lr->ls->route),
                   eb_lf_str("detail", eb_redis_reply_is_error(r) ? eb_redis_reply_text(r) : "unexpected reply"));
        if (library_missing(r))
            session_fail(l, "ledger: the function library vanished; reconnecting to load it",
                         eb_redis_reply_text(r));
        s->p.ri++;
        s->offset = 0;
        sweep_step(l);
        return;
    }
    if (s->offset == 0) {
        lr->ls->cyc_pending += pending;
        lr->ls->cyc_overdue += overdue;
        lr->ls->cyc_seen = true;
    }
    int db = s->p.dbs[s->p.di];
    long long since = now - l->sweep_grace_ms - l->sweep_interval_ms;
    for (size_t i = 5; i + 1 < r->elements; i += 2) {
        if (l->ntickets >= l->max_tickets) {
            s->capped = true;
            break;
        }
        sweep_collect(l, s->p.ri, db, r->element[i], r->element[i + 1], since);
    }
    if (more && !s->capped) {
        s->offset = (size_t)next;
    } else {
        s->p.ri++;
        s->offset = 0;
    }
    sweep_step(l);
}

static void on_info_sweep(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    int ready = pass_on_info(&l->sw.p, req, r);
    if (ready < 0)
        sweep_abort(l);
    else if (ready > 0)
        sweep_step(l);
}

/* @locality loop thread (libevent timer). */
static void on_sweep_timer(evutil_socket_t fd, short what, void *arg) {
    sweep_start(arg);
}

/* ------------------------------------------------------------------------
 * Claim renewals
 * --------------------------------------------------------------------- */

/* One FCALL eb1_renew for ts[0..n) (one ledger, one db): claim_ttl_ms,
 * then the members. */
static void renew_batch(eb_ledger_t *l, eb_ledger_ticket_t **ts, size_t n) {
    struct eb_redis_argv a;
    fcall_head(&a, "eb1_renew", 1, ts[0]->ls);
    eb_redis_argv_add_i64(&a, l->claim_ttl_ms);
    for (size_t i = 0; i < n; i++)
        eb_redis_argv_add_bytes(&a, ts[i]->key, ts[i]->key_len);
    (void)send_args(l, R_RENEW, ts[0]->db, &a);
}

/* Every claim_ttl/3: extend the claims of timers Kafka has not confirmed
 * yet, so an outage longer than a claim does not hand them to another
 * replica. @locality loop thread (libevent timer). */
static void on_renew_timer(evutil_socket_t fd, short what, void *arg) {
    eb_ledger_t *l = arg;
    if (!l->ready || !l->ntickets)
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

/* ------------------------------------------------------------------------
 * Observed-mode scan
 * --------------------------------------------------------------------- */

static void scan_step(eb_ledger_t *l);

static void scan_abort(eb_ledger_t *l, bool again) {
    if (l->sc.p.running && again)
        l->scan_wanted = true;
    pass_end(&l->sc.p);
}

/* Record every observed route's timers that exist now. Runs only while the
 * source is subscribed (so nothing armed after the scan passes by unseen)
 * and the ledger is connected; otherwise it waits for both. */
static void scan_start(eb_ledger_t *l) {
    if (!any_route(l, PASS_OBSERVED) || l->stopped)
        return;
    if (!l->ready || !l->source_subscribed) {
        l->scan_wanted = true;
        return;
    }
    if (l->sc.p.running) {
        l->sc.p.again = true;
        return;
    }
    struct scan *s = &l->sc;
    l->scan_wanted = false;
    s->seen = s->recorded = 0;
    snprintf(s->cursor, sizeof(s->cursor), "0");
    int ready = pass_begin(l, &s->p, R_INFO_SCAN);
    if (ready < 0)
        scan_abort(l, true);
    else if (ready > 0)
        scan_step(l);
}

static void scan_finish(eb_ledger_t *l) {
    struct scan *s = &l->sc;
    eb_log(l->log, EB_LOG_INFO, "ledger: observed-mode scan complete",
           eb_lf_int("keys_seen", (int64_t)s->seen),
           eb_lf_int("duration_ms", (eb_mono_ns() - s->p.start_ns) / 1000000));
    bool again = s->p.again;
    scan_abort(l, false);
    if (again)
        scan_start(l);
}

static void scan_step(eb_ledger_t *l) {
    struct scan *s = &l->sc;
    if (!pass_seek(l, &s->p, PASS_OBSERVED)) {
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
    struct lreq *r = send_args(l, R_SCAN, s->p.dbs[s->p.di], &a);
    if (!r) {
        scan_abort(l, true);
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
        l->sc.seen++;
        if (eb_router_match(l->cfg->router, e->str, e->len, EB_EVENT_EXPIRED_ID, &m) &&
            m.rule == route)
            eb_redis_argv_add_bytes(&mine, e->str, e->len);
    }
    for (int i = 0; eb_redis_argv_ok(&mine) && i < mine.argc; i += OBSERVE_BATCH) {
        int k = mine.argc - i < OBSERVE_BATCH ? mine.argc - i : OBSERVE_BATCH;
        struct eb_redis_argv a;
        fcall_head(&a, "eb1_observe", (size_t)k + 1, lr->ls);
        for (int j = i; j < i + k; j++)
            eb_redis_argv_add_bytes(&a, mine.argv[j], mine.argvlen[j]);
        struct lreq *r = send_args(l, R_OBSERVE, db, &a);
        if (r)
            r->ls = lr->ls;
    }
    eb_redis_argv_free(&mine);
}

static void on_scan(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    struct scan *s = &l->sc;
    if (!pass_current(&s->p, req))
        return;
    if (!r) {
        scan_abort(l, true);
        return;
    }
    if (eb_redis_reply_is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        if (log_allow(l, LOGSLOT_SCAN))
            eb_log(l->log, EB_LOG_ERROR, "ledger: observed-mode SCAN refused by redis",
                   eb_lf_str("detail", eb_redis_reply_is_error(r) ? eb_redis_reply_text(r) : "unexpected reply"));
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

static void on_info_scan(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    int ready = pass_on_info(&l->sc.p, req, r);
    if (ready < 0)
        scan_abort(l, true);
    else if (ready > 0)
        scan_step(l);
}

/* ------------------------------------------------------------------------
 * Replies
 * --------------------------------------------------------------------- */

static void on_ready(eb_ledger_t *l) {
    l->ready = true;
    eb_redis_session_established(l->sess);
    eb_metrics_inc(l->m_loads_ok);
    int64_t waiting = 0;
    for (const eb_ledger_ticket_t *t = l->ack_wait; t; t = t->wnext)
        waiting++;
    eb_log(l->log, EB_LOG_INFO, "ledger: connected, function library loaded",
           eb_lf_str("host", l->host), eb_lf_int("port", l->port),
           eb_lf_int("acks_waiting", waiting));
    ack_flush(l);
    if (l->stopped)
        return;
    sweep_start(l);
    if (any_route(l, PASS_OBSERVED))
        scan_start(l);
}

static void on_load(eb_ledger_t *l, const redisReply *r) {
    if (!r)
        return;
    if (eb_redis_reply_is_error(r)) {
        eb_metrics_inc(l->m_loads_failed);
        eb_log(l->log, EB_LOG_ERROR,
               "ledger: cannot load the Redis Function library eb_timers_v1; retrying",
               eb_lf_str("detail", eb_redis_reply_text(r)),
               eb_lf_str("hint", "needs Redis >= 7.0 on a master; an ACL user needs "
                                 "+function|load +fcall and access to the ledger keys"));
        session_fail(l, "ledger: function library not loaded", eb_redis_reply_text(r));
        return;
    }
    on_ready(l);
}

/* @locality loop thread, inside hiredis. */
static void conn_on_reply(eb_redis_conn_t *c, const redisReply *r, void *privdata, void *opaque) {
    eb_ledger_t *l = opaque;
    struct lreq *req = privdata;
    eb_redis_pending_remove(&l->pending, &req->link);
    l->cb_depth++;
    switch (req->kind) {
    case R_AUTH:
        if (r && eb_redis_reply_is_error(r))
            session_fail(l, "ledger: redis AUTH failed", eb_redis_reply_text(r));
        break;
    case R_SETNAME:
        break; /* a courtesy to operators; an ACL may forbid it */
    case R_SELECT:
        if (r && eb_redis_reply_is_error(r))
            session_fail(l, "ledger: redis SELECT failed", eb_redis_reply_text(r));
        break;
    case R_LOAD:
        on_load(l, r);
        break;
    case R_CLAIM:
        on_claims(l, req, r);
        break;
    case R_COLLECT:
        on_claim(l, req->t, r, true);
        break;
    case R_ACK:
    case R_DEL_PAYLOAD:
        on_ack(l, req, r);
        break;
    case R_DUE:
        on_due(l, req, r);
        break;
    case R_INFO_SWEEP:
        on_info_sweep(l, req, r);
        break;
    case R_INFO_SCAN:
        on_info_scan(l, req, r);
        break;
    case R_SCAN:
        on_scan(l, req, r);
        break;
    case R_OBSERVE:
    case R_DROP:
        on_observe(l, req, r);
        break;
    case R_RENEW:
    case R_PING:
        break;
    case R_TOUCH:
        if (r && req->ls) {
            int64_t dl;
            eb_metrics_inc(req->ls->claims[PATH_SWEEP][claim_status(r, &dl)]);
        }
        break;
    }
    l->cb_depth--;
    free(req->ts);
    free(req);
}

static const struct eb_redis_conn_handlers conn_handlers = {
    conn_on_connect,
    conn_on_disconnect,
    conn_on_reply,
};

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
    return (a && *a ? a : "")[0] != (b && *b ? b : "")[0] ||
           strcmp(a && *a ? a : "", b && *b ? b : "") != 0;
}

/* A reload that points at another Redis (or other credentials, databases):
 * take the new settings and reconnect. Acknowledgements parked meanwhile
 * go to the new server, where the ledger's conditional removal makes them
 * harmless no-ops if the entry is not there. */
static int set_redis(eb_ledger_t *l, const struct eb_config_redis *r) {
    bool same_dbs =
        l->all_databases == r->all_databases &&
        (r->all_databases || (l->ndatabases == r->ndatabases &&
                              !memcmp(l->databases, r->databases, r->ndatabases * sizeof(int))));
    if (l->host && !str_differs(l->host, r->host) && l->port == r->port &&
        !str_differs(l->username, r->username) && !str_differs(l->password, r->password) &&
        same_dbs)
        return 0;
    char *host = strdup(r->host);
    char *user = r->username && *r->username ? strdup(r->username) : NULL;
    char *pass = r->password && *r->password ? strdup(r->password) : NULL;
    size_t ndb = r->all_databases ? 0 : r->ndatabases;
    int *dbs = ndb ? malloc(ndb * sizeof(int)) : NULL;
    if (!host || (r->username && *r->username && !user) || (r->password && *r->password && !pass) ||
        (ndb && !dbs)) {
        free(host);
        free(user);
        free(pass);
        free(dbs);
        return EB_ENOMEM;
    }
    if (ndb)
        memcpy(dbs, r->databases, ndb * sizeof(int));
    bool had = l->host != NULL;
    free(l->host);
    free(l->username);
    if (l->password) {
        memset(l->password, 0, strlen(l->password));
        free(l->password);
    }
    free(l->databases);
    l->host = host;
    l->port = r->port;
    l->username = user;
    l->password = pass;
    l->all_databases = r->all_databases;
    l->databases = dbs;
    l->ndatabases = ndb;
    l->connect_timeout_ms = r->connect_timeout_ms > 0 ? r->connect_timeout_ms : 5000;
    l->reply_timeout_ms = r->heartbeat_timeout_ms > 0 ? r->heartbeat_timeout_ms : 5000;
    if (had && l->conn)
        session_fail(l, "ledger: redis settings changed; reconnecting", NULL);
    return 0;
}

int eb_ledger_set_config(eb_ledger_t *l, const struct eb_config *cfg) {
    if (set_redis(l, &cfg->redis) != 0)
        return EB_ENOMEM;
    struct lroute *routes = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*routes));
    struct eb_router_rule *rules = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*rules));
    eb_router_t *prouter = NULL;
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
        eb_buf_reset(&l->kbuf);
        eb_ledger_key(&l->kbuf, cfg->ledger.key_prefix, r->name);
        if (!eb_buf_ok(&l->kbuf) || !(lr->ls = get_stats(l, r->name, l->kbuf.data, l->kbuf.len)))
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
    prouter = eb_router_new(rules, cfg->nroutes, NULL, err, sizeof(err));
    if (!prouter && cfg->nroutes)
        goto err_free;
    free(rules);
    free_routes(l->routes, l->nroutes);
    eb_router_destroy(l->payload_router);
    l->routes = routes;
    l->nroutes = cfg->nroutes;
    l->payload_router = prouter;
    l->cfg = cfg;
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
    /* Route indexes changed meaning: cycles in progress start over. */
    sweep_abort(l);
    scan_abort(l, false);
    if (l->ready && !l->stopped) {
        sweep_start(l);
        if (any_route(l, PASS_OBSERVED))
            scan_start(l);
    }
    return 0;

err_free:
    free_routes(routes, cfg->nroutes);
    free(rules);
    eb_router_destroy(prouter);
    return EB_ENOMEM;
}

/* ------------------------------------------------------------------------
 * Lifecycle
 * --------------------------------------------------------------------- */

static void free_fields(eb_ledger_t *l) {
    eb_redis_session_destroy(l->sess);
    struct event *evs[] = {l->ev_tick, l->ev_sweep, l->ev_renew, l->ev_ack, l->ev_claim};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (evs[i])
            event_free(evs[i]);
    }
    free_routes(l->routes, l->nroutes);
    eb_router_destroy(l->payload_router);
    while (l->all_stats) {
        struct lstats *s = l->all_stats;
        l->all_stats = s->next;
        free(s->route);
        free(s->lkey);
        free(s);
    }
    free(l->host);
    free(l->username);
    if (l->password) {
        memset(l->password, 0, strlen(l->password));
        free(l->password);
    }
    free(l->databases);
    free(l->buckets);
    eb_buf_free(&l->kbuf);
    eb_buf_free(&l->pbuf);
    eb_buf_free(&l->jbuf);
    free(l);
}

eb_ledger_t *eb_ledger_new(struct event_base *base, const struct eb_ledger_conf *conf,
                           const struct eb_config *cfg, char *errstr, size_t errstr_size) {
    if (!base || !conf || !conf->emit || !cfg || !cfg->redis.host) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                  "ledger needs an event base, an emit callback and a configuration");
        return NULL;
    }
    eb_ledger_t *l = calloc(1, sizeof(*l));
    if (!l) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    const struct eb_config_redis *r = &cfg->redis;
    l->base = base;
    l->log = conf->log;
    l->metrics = conf->metrics;
    l->emit = conf->emit;
    l->emit_opaque = conf->opaque;
    bool oom = set_redis(l, r) != 0;
    l->sess =
        eb_redis_session_new(base, (uint32_t)(r->reconnect_min_ms > 0 ? r->reconnect_min_ms : 100),
                             (uint32_t)(r->reconnect_max_ms > 0 ? r->reconnect_max_ms : 10000),
                             &sess_handlers, l, errstr, errstr_size);
    l->id_expire = eb_notify_event_id("expire", 6);
    l->id_del = eb_notify_event_id("del", 3);
    l->id_persist = eb_notify_event_id("persist", 7);
    l->ev_tick = event_new(base, -1, EV_PERSIST, on_tick, l);
    l->ev_sweep = event_new(base, -1, EV_PERSIST, on_sweep_timer, l);
    l->ev_renew = event_new(base, -1, EV_PERSIST, on_renew_timer, l);
    l->ev_ack = evtimer_new(base, on_ack_timer, l);
    l->ev_claim = evtimer_new(base, on_claim_timer, l);
    if (oom || !l->sess || !l->ev_tick || !l->ev_sweep || !l->ev_renew || !l->ev_ack ||
        !l->ev_claim || !l->metrics || register_metrics(l) || !ticket_grow(l) ||
        eb_ledger_set_config(l, cfg) != 0) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory setting up the ledger");
        goto err_free_fields;
    }
    return l;

err_free_fields:
    if (l->metrics)
        eb_metrics_unbind(l->metrics, l);
    free_fields(l);
    return NULL;
}

int eb_ledger_start(eb_ledger_t *l) {
    if (l->started)
        return EB_ESTATE;
    l->started = true;
    struct timeval tick = eb_ms_tv(TICK_MS), sweep = eb_ms_tv(l->sweep_interval_ms),
                   renew = eb_ms_tv(l->claim_ttl_ms / 3);
    event_add(l->ev_tick, &tick);
    event_add(l->ev_sweep, &sweep);
    event_add(l->ev_renew, &renew);
    eb_log(l->log, EB_LOG_INFO, "ledger starting", eb_lf_str("host", l->host),
           eb_lf_int("port", l->port), eb_lf_int("sweep_interval_ms", l->sweep_interval_ms),
           eb_lf_int("claim_ttl_ms", l->claim_ttl_ms));
    session_open(l);
    return 0;
}

void eb_ledger_stop(eb_ledger_t *l) {
    if (!l || l->stopped)
        return;
    l->stopped = true;
    event_del(l->ev_sweep);
    sweep_abort(l);
    scan_abort(l, false);
}

bool eb_ledger_busy(const eb_ledger_t *l) {
    return l && l->ready && l->ntickets > 0;
}

void eb_ledger_on_source_state(eb_ledger_t *l, enum eb_redis_state state) {
    bool was = l->source_subscribed;
    l->source_subscribed = state == EB_REDIS_SUBSCRIBED;
    if (!l->source_subscribed || was || l->stopped)
        return;
    /* (Re)subscribed: whatever expired during the gap was not announced to
     * us. Sweep now rather than in up to one interval, and record what
     * observed routes armed meanwhile. */
    sweep_start(l);
    if (any_route(l, PASS_OBSERVED))
        scan_start(l);
}

void eb_ledger_log_stats(const eb_ledger_t *l) {
    double pending = 0, overdue = 0;
    for (const struct lstats *s = l->all_stats; s; s = s->next) {
        pending += eb_metrics_value(s->pending);
        overdue += eb_metrics_value(s->overdue);
    }
    eb_log(l->log, EB_LOG_INFO, "ledger stats", eb_lf_bool("connected", l->ready),
           eb_lf_int("pending", (int64_t)pending), eb_lf_int("overdue", (int64_t)overdue),
           eb_lf_int("inflight", (int64_t)l->ntickets),
           eb_lf_int("recovered", (int64_t)l->total_recovered),
           eb_lf_int("acked", (int64_t)l->total_acked),
           eb_lf_int("sweeps", (int64_t)l->total_sweeps),
           eb_lf_dbl("sweep_p99_s", eb_metrics_quantile(l->m_sweep, 0.99)));
}

void eb_ledger_destroy(eb_ledger_t *l) {
    if (!l)
        return;
    if (l->cb_depth > 0) {
        fprintf(stderr, "eb_ledger_destroy() called from inside its own callback\n");
        abort();
    }
    l->destroying = true;
    l->stopped = true;
    l->ready = false;
    eb_redis_conn_t *c = l->conn;
    l->conn = NULL;
    /* NULL replies now: claims are freed, acks parked in ack_wait. */
    eb_redis_conn_destroy(c);
    queue_free(l);
    for (size_t b = 0; b < l->nbuckets; b++) {
        eb_ledger_ticket_t *t = l->buckets[b];
        while (t) {
            eb_ledger_ticket_t *next = t->hnext;
            free(t->pkey);
            free(t);
            t = next;
        }
    }
    free(l->sw.p.dbs);
    free(l->sc.p.dbs);
    if (l->metrics)
        eb_metrics_unbind(l->metrics, l);
    free_fields(l);
}

/* ------------------------------------------------------------------------
 * `expiry-bridge functions load`
 * --------------------------------------------------------------------- */

int eb_ledger_install(const struct eb_config *cfg, char *errstr, size_t errstr_size) {
    const struct eb_config_redis *r = &cfg->redis;
    struct timeval tv = eb_ms_tv(r->connect_timeout_ms > 0 ? r->connect_timeout_ms : 5000);
    int rc = 0;
    redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
    if (!c || c->err) {
        rc = eb_error_set(errstr, errstr_size, EB_EIO, "cannot connect to redis at %s:%d: %s", r->host,
                       r->port, c ? c->errstr : "out of memory");
        goto out_free;
    }
    redisSetTimeout(c, tv);
    if (r->password && *r->password) {
        struct eb_redis_argv auth;
        eb_redis_conn_auth_args(&auth, r->username, r->password);
        redisReply *a = redisCommandArgv(c, auth.argc, auth.argv, auth.argvlen);
        eb_redis_argv_free(&auth);
        if (!a || a->type == REDIS_REPLY_ERROR) {
            rc = eb_error_set(errstr, errstr_size, a ? EB_EREDIS : EB_EIO, "AUTH failed: %s",
                           a ? a->str : c->errstr);
            freeReplyObject(a);
            goto out_free;
        }
        freeReplyObject(a);
    }
    struct eb_redis_argv load;
    function_load_args(&load);
    redisReply *rep = redisCommandArgv(c, load.argc, load.argv, load.argvlen);
    eb_redis_argv_free(&load);
    if (!rep) {
        rc = eb_error_set(errstr, errstr_size, EB_EIO, "FUNCTION LOAD: %s", c->errstr);
    } else if (rep->type == REDIS_REPLY_ERROR) {
        rc =
            eb_error_set(errstr, errstr_size, EB_EREDIS,
                      "redis refused FUNCTION LOAD: %s (needs Redis >= 7.0 on a master)", rep->str);
    }
    freeReplyObject(rep);

out_free:
    if (c)
        redisFree(c);
    return rc;
}
