/* ledger_internal.h -- what the deadline ledger's files share: the ledger's
 * struct and the calls between its parts. Not a contract for anyone else
 * (ledger.h is); only the ledger's own .c files include it.
 *
 * The ledger's files, by job:
 *   ledger.c          public API, configuration (routes, settings), the
 *                     Redis connection and its requests, metrics
 *   ledger_tickets.c  the timers in the bridge's hands, and their bound
 *   ledger_claims.c   the live path (eb1_claim), producing a claimed timer,
 *                     acknowledgements (eb1_ack), claim renewals
 *   ledger_sweep.c    the periodic sweep (eb1_due, eb1_collect) and the
 *                     walk over (database, route) pairs it shares with scans
 *   ledger_scan.c     observed mode: bookkeeping notifications, SCAN
 *   ledger_install.c  `expiry-bridge functions load`
 *   ledger_payload.c  pure: ledger key names, SCAN patterns, payload JSON
 *
 * State is split the way Redis Cluster will need it: struct ledger_link is
 * one Redis connection and what lives on it (its requests, the sweep and
 * scan walking its data, acknowledgements waiting for it); tickets, routes
 * and settings are the ledger's, whatever node a timer lives on.
 *
 * @locality loop thread only.
 */
#ifndef EB_LEDGER_INTERNAL_H
#define EB_LEDGER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "core/buf.h"
#include "core/notify.h"
#include "core/router.h"
#include "ledger/ledger.h"
#include "redis/redis_argv.h"
#include "redis/redis_client.h"
#include "redis/redis_tls.h"
#include "redis/redis_reply.h"

/* ------------------------------------------------------------------------
 * Shared vocabulary
 * --------------------------------------------------------------------- */

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

enum path { PATH_LIVE = 0, PATH_SWEEP = 1 };

enum ack_result { ACK_REMOVED = 0, ACK_GONE, ACK_REARMED, ACK_ERROR, ACK_COUNT };

/* Log slots of eb_ledger_log_allow(): errors of Redis tend to come in
 * floods (one per command) when they come. */
enum { LOGSLOT_CLAIM, LOGSLOT_COLLECT, LOGSLOT_ACK, LOGSLOT_DUE, LOGSLOT_SCAN, LOGSLOT_OBSERVE,
       LOGSLOT_BOUND, LOGSLOT_COUNT };

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
    eb_series_t *pending, *overdue, *recovered, *payload_missing, *deferred;
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

/* A timer in the bridge's hands, from its claim until Redis acknowledged
 * it: keyed by (ledger, db, key) so the sweep never claims what this bridge
 * already holds. */
struct eb_ledger_ticket {
    struct eb_ledger_ticket *hnext; /* hash chain */
    struct eb_ledger_ticket *wnext; /* claim, ack or ack_wait list */
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

struct lreq;
typedef void(eb_ledger_reply_fn)(eb_ledger_t *l, struct lreq *req, const redisReply *r);

/* One command in flight on the ledger's connection: its handler and what
 * the handler needs. Freed (with ts) after the handler ran, with the reply
 * or NULL when the connection went away first. */
struct lreq {
    eb_ledger_t *l;
    eb_ledger_reply_fn *done;
    unsigned gen;            /* sweep/scan steps: the walk it belongs to */
    eb_ledger_ticket_t *t;   /* one timer (collect, DEL payload) */
    eb_ledger_ticket_t **ts; /* a batch (claim, ack), owned */
    size_t nts;
    struct lstats *ls; /* observe, drop, touch */
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

/* Tickets collected during one turn of the loop and sent together at the
 * next (one FCALL per ledger and database instead of one per timer). */
struct tqueue {
    eb_ledger_ticket_t *head; /* linked through wnext */
    size_t n;
    struct event *ev; /* zero timeout, added by the first push */
};

/* One Redis connection of the ledger and what belongs to it. */
struct ledger_link {
    eb_redis_client_t *client;
    bool ready;                   /* connected and the library loaded */
    eb_ledger_ticket_t *ack_wait; /* acknowledgements waiting for it */
    struct sweep sw;
    struct scan sc;
};

struct eb_ledger {
    struct event_base *base;
    eb_log_t *log;
    eb_metrics_t *metrics;
    eb_ledger_emit_cb *emit;
    void *emit_opaque;
    const struct eb_config *cfg; /* borrowed */
    bool started, stopped, destroying;

    /* connection settings, copied, to tell whether a reload changed them */
    char *host;
    int port;
    char *username;
    char *password; /* never logged */
    char *tls_key;        /* redis.tls settings in one string, NULL without TLS */
    eb_redis_tls_t *tls;  /* rediss: the client's TLS, or NULL */
    bool all_databases;
    int *databases;
    size_t ndatabases;
    int connect_timeout_ms, reply_timeout_ms, reconnect_min_ms, reconnect_max_ms;

    /* from cfg->ledger, refreshed by set_config */
    int sweep_interval_ms, sweep_grace_ms, claim_ttl_ms, remember_ms;
    size_t batch, max_tickets;

    struct lroute *routes;
    size_t nroutes;
    eb_router_t *payload_router; /* rule i: route i with its payload template as key */
    struct lstats *all_stats;
    int id_expire, id_del, id_persist;

    struct ledger_link link;
    struct event *ev_sweep, *ev_renew, *ev_room;

    /* tickets (ledger_tickets.c) */
    eb_ledger_ticket_t **buckets;
    size_t nbuckets, ntickets;
    size_t peak_tickets; /* most held at once since start */
    bool room_wanted; /* expiries were left in Redis for want of room */
    struct tqueue acks;   /* delivered: acknowledgements to send */
    struct tqueue claims; /* live expiries: claims to send */

    bool source_subscribed;
    bool scan_wanted; /* run a scan as soon as both the source and the ledger are up */

    struct eb_buf kbuf, pbuf, jbuf; /* scratch: ledger key, payload key, payload JSON */
    int64_t last_log_ms[LOGSLOT_COUNT];

    /* metrics */
    eb_metric_t *f_pending, *f_overdue, *f_recovered, *f_acks, *f_claims, *f_missing,
        *f_observed, *f_deferred;
    eb_series_t *m_sweep, *m_skipped, *m_loads_ok, *m_loads_failed;
    uint64_t total_recovered, total_acked, total_sweeps, total_deferred;
};

/* ------------------------------------------------------------------------
 * ledger.c: requests on the connection, logs
 * --------------------------------------------------------------------- */

/* Send a built argument list (freed here) in database db (< 0: any) with
 * its handler. Returns the request, to attach what the handler needs, or
 * NULL when it could not be sent (not connected, out of memory): the
 * caller keeps what it meant to attach. */
struct lreq *eb_ledger_send(eb_ledger_t *l, eb_ledger_reply_fn *done, int db,
                            struct eb_redis_argv *a);

/* Start a as a call of the library: FCALL fn numkeys <ledger key>; the
 * caller adds the other keys, then the arguments. */
void eb_ledger_fcall_head(struct eb_redis_argv *a, const char *fn, size_t numkeys,
                          const struct lstats *ls);

/* Log at most once per 5 s per slot. */
bool eb_ledger_log_allow(eb_ledger_t *l, unsigned slot);

/* An error reply saying the library is gone (FUNCTION FLUSH): reconnects,
 * which loads it again. True when it was that. */
bool eb_ledger_library_missing(eb_ledger_t *l, const redisReply *r);

/* The text of an error reply, or "unexpected reply". */
const char *eb_ledger_reply_error(const redisReply *r);

/* ------------------------------------------------------------------------
 * ledger_tickets.c
 * --------------------------------------------------------------------- */

eb_ledger_ticket_t *eb_ledger_tickets_find(const eb_ledger_t *l, const struct lstats *ls, int db,
                                           const void *key, size_t len);

/* A new ticket in the table, or NULL when out of memory. The bound is the
 * caller's to check (eb_ledger_tickets_room()). */
eb_ledger_ticket_t *eb_ledger_tickets_new(eb_ledger_t *l, struct lstats *ls, int db,
                                          const void *key, size_t len);

/* Out of the table and freed. When timers were left in Redis for want of
 * room and the table is half empty again, a sweep is scheduled. */
void eb_ledger_tickets_free(eb_ledger_t *l, eb_ledger_ticket_t *t);

/* True while a new ticket fits under the bound (max_tickets). */
bool eb_ledger_tickets_room(const eb_ledger_t *l);

/* A ticket did not fit: its timer stays in Redis for the sweep; said
 * loudly (rate-limited) and counted. */
void eb_ledger_tickets_defer(eb_ledger_t *l, struct lstats *ls, const char *path);

/* Free every ticket (destroy). */
void eb_ledger_tickets_free_all(eb_ledger_t *l);

/* Grow the table once (new). False when out of memory. */
bool eb_ledger_tickets_init(eb_ledger_t *l);

/* ------------------------------------------------------------------------
 * ledger_claims.c
 * --------------------------------------------------------------------- */

/* Render route's payload key for t's key into t->pkey (nothing when the
 * route has none or its pattern no longer matches). */
void eb_ledger_claims_payload_key(eb_ledger_t *l, eb_ledger_ticket_t *t, size_t route);

/* A claim/collect reply: hand the timer to the pipeline when it is owed,
 * else free the ticket. collect: it came from the sweep. */
void eb_ledger_claims_on_claim(eb_ledger_t *l, eb_ledger_ticket_t *t, const redisReply *r,
                               bool collect);

/* The status of a claim/collect reply, ST_ERROR when malformed; the
 * deadline in *deadline. */
int eb_ledger_claims_status(const redisReply *r, int64_t *deadline);

/* The connection is back: send the acknowledgements that waited. */
void eb_ledger_claims_flush_acks(eb_ledger_t *l);

/* libevent timers. @locality loop thread. */
void eb_ledger_claims_on_ack_timer(evutil_socket_t fd, short what, void *arg);
void eb_ledger_claims_on_claim_timer(evutil_socket_t fd, short what, void *arg);
void eb_ledger_claims_on_renew_timer(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------------------
 * ledger_sweep.c
 * --------------------------------------------------------------------- */

bool eb_ledger_sweep_any_route(const eb_ledger_t *l, enum pass_kind kind);
void eb_ledger_sweep_start(eb_ledger_t *l);
void eb_ledger_sweep_abort(eb_ledger_t *l);
/* libevent timer: the periodic sweep and the one room asks for. */
void eb_ledger_sweep_on_timer(evutil_socket_t fd, short what, void *arg);

/* The pass helpers the scan shares (see struct pass). */
int eb_ledger_pass_begin(eb_ledger_t *l, struct pass *p, eb_ledger_reply_fn *on_info);
int eb_ledger_pass_on_info(struct pass *p, const struct lreq *req, const redisReply *r);
bool eb_ledger_pass_current(const struct pass *p, const struct lreq *req);
bool eb_ledger_pass_seek(const eb_ledger_t *l, struct pass *p, enum pass_kind kind);
void eb_ledger_pass_end(struct pass *p);

/* ------------------------------------------------------------------------
 * ledger_scan.c
 * --------------------------------------------------------------------- */

void eb_ledger_scan_start(eb_ledger_t *l);
/* again: a scan was running, so one is wanted once the ledger is back. */
void eb_ledger_scan_abort(eb_ledger_t *l, bool again);

/* ------------------------------------------------------------------------
 * ledger_install.c
 * --------------------------------------------------------------------- */

/* FUNCTION LOAD REPLACE <the embedded library>, into a (initialised here):
 * on every connect, and for `expiry-bridge functions load`. */
void eb_ledger_install_load_args(struct eb_redis_argv *a);

#endif
