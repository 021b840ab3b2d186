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
 *   ledger_links.c    one connection per master the topology reports, which
 *                     master serves a ledger, requests and their redirections
 *                     (MOVED, ASK, failovers)
 *   ledger_scan.c     observed mode: bookkeeping notifications, SCAN, and on
 *                     Cluster the probe of a master's slot ledgers
 *   ledger_install.c  `expiry-bridge functions load`
 *   ledger_keys.c     pure: ledger names (route, bucket, slot), the bucket a
 *                     key's hash tag names, SCAN patterns
 *   ledger_payload.c  pure: payload JSON
 *
 * State is split by where it lives: struct ledger_link is one master's
 * connection and what walks its data (the sweep, the scan, the probe);
 * tickets, routes, settings, queued claims and acknowledgements are the
 * ledger's, whatever master a timer lives on -- each command is routed to
 * the master serving its ledger's slot when it is sent.
 *
 * A route may have several ledgers (struct lpart): its one ledger
 * `<prefix>{<route>}`; bucket b `<prefix>{<route>:<b>}` (ledger.buckets >
 * 1, armed); or, for observed routes on Cluster, the ledger of slot s
 * `<prefix>{<tag of s>}:<route>`. A ticket remembers which.
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
#include "redis/redis_reply.h"
#include "redis/redis_tls.h"
#include "redis/redis_topology.h"

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

/* Which ledger of a route (see the top of this file). */
enum lkind { LK_ROUTE = 0, LK_BUCKET, LK_SLOT };

struct lpart {
    uint8_t kind; /* enum lkind */
    uint16_t n;   /* the bucket or the slot; 0 for LK_ROUTE */
};

enum ack_result { ACK_REMOVED = 0, ACK_GONE, ACK_REARMED, ACK_ERROR, ACK_COUNT };

/* Log slots of eb_ledger_log_allow(): errors of Redis tend to come in
 * floods (one per command) when they come. */
enum { LOGSLOT_CLAIM, LOGSLOT_COLLECT, LOGSLOT_ACK, LOGSLOT_DUE, LOGSLOT_SCAN, LOGSLOT_OBSERVE,
       LOGSLOT_BOUND, LOGSLOT_REDIRECT, LOGSLOT_COUNT };

/* Per slot of a link's master (observed routes on Cluster). */
enum { SLOT_KNOWN = 1, SLOT_PROBE = 2, SLOT_NONEMPTY = 4, SLOT_OWNED = 8 };

/* ------------------------------------------------------------------------
 * Types
 * --------------------------------------------------------------------- */

/* Per ledger (route name + ledger key), kept for the ledger's life so that
 * tickets in flight across a reload keep a valid ledger name and counters. */
struct lstats {
    struct lstats *next;
    char *route;
    char *prefix; /* ledger.key_prefix it was made with */
    char *lkey;   /* the route's own ledger key, <prefix>{<route>} */
    size_t lkey_len;
    unsigned lkey_slot; /* its Cluster slot */
    bool warned_untagged, warned_payload_slot; /* logged once each */
    eb_series_t *pending, *overdue, *recovered, *payload_missing, *deferred, *untagged;
    eb_series_t *acks[ACK_COUNT];
    eb_series_t *claims[2][ST_COUNT];
    eb_series_t *observed_record, *observed_cancel;
    size_t ord; /* its index in every link's gauges */
};

/* Per route of the current configuration (index = route index). */
struct lroute {
    const struct eb_config_route *cfg;
    struct lstats *ls;
    bool active;   /* ledger != off or a payload: takes the live path */
    bool ledgered; /* ledger != off: swept, acknowledged */
    bool observed;
    uint8_t kind;    /* enum lkind of its ledgers: LK_ROUTE, LK_BUCKET, LK_SLOT */
    /* LK_BUCKET: buckets + 1 (the last is the route's own ledger, where
     * timers armed before ledger.buckets was raised wait); LK_SLOT: 16384;
     * else 1 */
    unsigned nparts;
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
    struct lpart part; /* which of the route's ledgers holds it */
    enum tstate state;
    bool recovered;
    bool has_payload;
    int64_t deadline_ms; /* < 0: no entry (only a payload to delete) */
    int64_t recv_mono_ns, recv_real_us;
    int64_t claimed_ns; /* last claim or renewal */
    const char *node;   /* live: the announcing master ("host:port", interned), or NULL */
    char *pkey;         /* payload key, or NULL */
    size_t pkey_len;
    size_t key_len;
    char key[]; /* the timer key */
};

struct lreq;
struct ledger_link;
typedef void(eb_ledger_reply_fn)(eb_ledger_t *l, struct lreq *req, const redisReply *r);

/* A command kept as sent, so that a redirection can send it again
 * elsewhere: one allocation, arguments copied. */
struct lcmd {
    int argc;
    const char **argv;
    size_t *argvlen;
};

/* One command in flight on a link: its handler and what the handler
 * needs. Freed (with ts and cmd) after the handler ran, with the reply or
 * NULL when the connection went away first -- or, for a routed command,
 * when its redirections ran out: NULL always means "not done; leave it to
 * a later attempt". */
struct lreq {
    eb_ledger_t *l;
    eb_ledger_reply_fn *done;
    struct ledger_link *link; /* where it was sent last */
    struct lreq *next;        /* the ledger's list of commands waiting to be sent again */
    struct lcmd *cmd;         /* routed commands: owned copy; NULL otherwise */
    int db;
    unsigned slot;  /* routed commands: the slot they belong to */
    unsigned tries; /* redirections followed so far */
    bool observe;   /* records entries: marks its slot known on the link it lands on */
    unsigned gen;            /* sweep/scan steps: the walk it belongs to */
    struct lpart part;       /* sweep steps, probes: which ledger */
    eb_ledger_ticket_t *t;   /* one timer (collect, DEL payload) */
    eb_ledger_ticket_t **ts; /* a batch (claim, ack), owned */
    size_t nts;
    struct lstats *ls; /* observe, drop, touch, due, probe */
};

/* One walk of a link over every (database, route, ledger) triple of one
 * kind of route, one request in flight at a time: the sweep's cycle and
 * the observed-mode scan are both one (the scan visits one "ledger" per
 * route: its prefix). The databases are the configured ones, or those INFO
 * keyspace lists when the bridge watches them all. The ledgers of a route
 * are those whose slot the link's master serves. gen tells the replies of
 * an ended pass (reload, reconnect) from those of the running one. Whoever
 * moves ri or pi on resets its own position within a ledger. */
struct pass {
    bool running, again;
    unsigned gen;
    int64_t start_ns;
    int *dbs;
    size_t ndbs, di, ri;
    unsigned pi; /* the route's ledger (lroute.nparts) */
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

/* Observed routes on Cluster: the probe of a master's slot ledgers
 * (EXISTS, sweep_batch at a time) after it was (re)subscribed or took
 * slots over, which finds ledgers this process did not write. */
struct probe {
    bool running, again;
    unsigned gen;
    unsigned next_slot; /* where the next batch starts */
    size_t ri;          /* within next_slot: the next observed route */
    size_t inflight;
    uint64_t probed, found;
};

/* Per route, what a link's last finished sweep counted (the route's gauges
 * are the sums over the links). */
struct lgauge {
    int64_t pending, overdue;     /* last finished cycle */
    int64_t cyc_pending, cyc_overdue; /* the running one */
    bool seen, cyc_seen;
};

/* One master's connection and what walks its data. */
struct ledger_link {
    eb_ledger_t *l;
    struct ledger_link *next; /* the ledger's links, or the retired ones */
    char *node; /* "host:port" (IPv6 in brackets), for events it recovers */
    char *host;
    int port;
    eb_redis_client_t *client;
    bool ready; /* connected and the library loaded */
    bool gone;  /* its master left the topology: stopped, destroyed on the next turn */
    struct sweep sw;
    struct scan sc;
    struct probe pr;
    bool scan_wanted; /* run a scan as soon as its master is subscribed and it is ready */
    /* Observed routes on Cluster (NULL otherwise): per slot SLOT_* flags,
     * and the sequence number of the last eb1_observe sent for it (a slot
     * ledger is forgotten only when a sweep cycle that began after it
     * found it empty). */
    uint8_t *slots;
    uint32_t *obs_seq;
    uint32_t seq, cyc_seq;
    struct lgauge *gauges; /* indexed by lstats.ord; ngauges of them */
    size_t ngauges;
};

struct eb_ledger {
    struct event_base *base;
    eb_log_t *log;
    eb_metrics_t *metrics;
    eb_ledger_emit_cb *emit;
    void *emit_opaque;
    const struct eb_config *cfg; /* borrowed */
    bool started, stopped, destroying;

    /* connection settings, copied, to tell whether a reload changed them;
     * where Redis is comes from the topology (ledger_links.c) */
    bool configured; /* set_redis ran once */
    char *username;
    char *password; /* never logged */
    char *tls_key;  /* redis.tls settings in one string; NULL without TLS */
    /* rediss: every link's TLS, and the one it replaced (kept until the
     * next change or the end: links retired on the loop's next turn may
     * still hold it). */
    eb_redis_tls_t *tls, *old_tls;
    bool all_databases;
    int *databases;
    size_t ndatabases;
    int connect_timeout_ms, reply_timeout_ms, reconnect_min_ms, reconnect_max_ms;

    /* from cfg->ledger, refreshed by set_config */
    int sweep_interval_ms, sweep_grace_ms, claim_ttl_ms, remember_ms;
    size_t batch, max_tickets;
    bool cluster; /* redis-cluster:// : ledgers are placed by slot */

    struct lroute *routes;
    size_t nroutes;
    eb_router_t *payload_router; /* rule i: route i with its payload template as key */
    struct lstats *all_stats;
    size_t nstats;
    int id_expire, id_del, id_persist;

    /* links (ledger_links.c) */
    eb_redis_topology_t *topo;           /* borrowed; where the masters come from */
    struct ledger_link *links;           /* one per master of the topology */
    struct ledger_link *retired;         /* gone: destroyed on the next turn */
    struct ledger_link **slot_link;      /* Cluster: the link serving each slot; else NULL */
    struct eb_ledger_slot_tags *tags;    /* observed routes on Cluster: slot ledger names */
    struct lreq *retry_head, *retry_tail; /* redirected commands waiting to be sent again */
    eb_ledger_ticket_t *ack_wait;        /* acknowledgements waiting for their master */
    struct event *ev_reap, *ev_retry;
    bool flush_wanted; /* ev_reap also flushes waiting acks and retries */

    struct event *ev_sweep, *ev_renew, *ev_room;

    /* tickets (ledger_tickets.c) */
    eb_ledger_ticket_t **buckets;
    size_t nbuckets, ntickets;
    size_t peak_tickets; /* most held at once since start */
    bool room_wanted; /* expiries were left in Redis for want of room */
    struct tqueue acks;   /* delivered: acknowledgements to send */
    struct tqueue claims; /* live expiries: claims to send */

    bool source_subscribed;

    struct eb_buf kbuf, pbuf, jbuf; /* scratch: ledger key, payload key, payload JSON */
    int64_t last_log_ms[LOGSLOT_COUNT];

    /* metrics */
    eb_metric_t *f_pending, *f_overdue, *f_recovered, *f_acks, *f_claims, *f_missing,
        *f_observed, *f_deferred, *f_untagged;
    eb_series_t *m_sweep, *m_skipped, *m_loads_ok, *m_loads_failed;
    eb_series_t *m_redirect[4]; /* by enum eb_cluster_redirect_kind (NONE: given up) */
    uint64_t total_recovered, total_acked, total_sweeps, total_deferred;
    uint64_t sweep_ticks; /* periodic sweep timer firings (ownership backstop) */
};

/* ------------------------------------------------------------------------
 * ledger.c: logs, the stats of a ledger
 * --------------------------------------------------------------------- */

/* Log at most once per 5 s per slot. */
bool eb_ledger_log_allow(eb_ledger_t *l, unsigned slot);

/* The text of an error reply, or "unexpected reply". */
const char *eb_ledger_reply_error(const redisReply *r);

/* A finished sweep cycle of a link: the routes' gauges are the sums of
 * every link's last cycle. */
void eb_ledger_gauges_update(eb_ledger_t *l);

/* ------------------------------------------------------------------------
 * ledger_links.c: the masters' connections, routing, requests
 * --------------------------------------------------------------------- */

/* The key of ledger part of ls, into out (reset first). */
void eb_ledger_part_key(const eb_ledger_t *l, const struct lstats *ls, struct lpart part,
                        struct eb_buf *out);

/* The Cluster slot of ledger part of ls. */
unsigned eb_ledger_part_slot(const struct lstats *ls, struct lpart part);

/* The link of the master serving slot (the one link outside Cluster), or
 * NULL. Ready or not. */
struct ledger_link *eb_ledger_link_for_slot(const eb_ledger_t *l, unsigned slot);

/* Does this replica own k's master (coordination)? True without a
 * topology, without coordination, and for a master the topology does not
 * list (yet): when in doubt, a link is swept. */
bool eb_ledger_link_owned(const eb_ledger_t *l, const struct ledger_link *k);

/* Send a built argument list (freed here) on link k, in database db (< 0:
 * any), with its handler; no redirection is followed (walks: the master's
 * new owner walks its own data). Returns the request, to attach what the
 * handler needs, or NULL when it could not be sent (k not ready, out of
 * memory): the caller keeps what it meant to attach. */
struct lreq *eb_ledger_send(eb_ledger_t *l, struct ledger_link *k, eb_ledger_reply_fn *done,
                            int db, struct eb_redis_argv *a);

/* The same, to the master serving slot; MOVED, ASK and the errors of a
 * node in a failover are followed (bounded), and a command whose
 * redirections ran out is answered NULL. */
struct lreq *eb_ledger_send_slot(eb_ledger_t *l, unsigned slot, eb_ledger_reply_fn *done, int db,
                                 struct eb_redis_argv *a);

/* req (sent with eb_ledger_send_slot()) records observed-mode entries:
 * the link it lands on (now, or after a redirection) sweeps its slot
 * ledger from now on. */
void eb_ledger_observe_sent(struct lreq *req);

/* Start a as a call of the library on ledger part of ls: FCALL fn numkeys
 * <ledger key>; the caller adds the other keys, then the arguments. */
void eb_ledger_fcall_head(const eb_ledger_t *l, struct eb_redis_argv *a, const char *fn,
                          size_t numkeys, const struct lstats *ls, struct lpart part);

/* An error reply saying the library is gone (FUNCTION FLUSH) on the link
 * of req: reconnects it, which loads it again. True when it was that. */
bool eb_ledger_library_missing(eb_ledger_t *l, const struct lreq *req, const redisReply *r);

/* True when any link is ready / every link is. */
bool eb_ledger_links_any_ready(const eb_ledger_t *l);
bool eb_ledger_links_all_ready(const eb_ledger_t *l);

/* The connection settings changed (a reload): every link anew. */
int eb_ledger_links_reconnect(eb_ledger_t *l);

/* The routes changed (set_config): every walk starts over; on Cluster the
 * slot-ledger names are made once, and every master's slot ledgers are
 * probed for routes that keep them. */
void eb_ledger_links_routes_changed(eb_ledger_t *l);

/* Start every link's client (eb_ledger_start). */
void eb_ledger_links_start(eb_ledger_t *l);

/* Destroy every link and answer waiting requests NULL (destroy). */
void eb_ledger_links_free(eb_ledger_t *l);

/* Make the timers ready again (events, tables): new(). False when out of
 * memory. */
bool eb_ledger_links_init(eb_ledger_t *l);

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
void eb_ledger_claims_on_claim(eb_ledger_t *l, const struct lreq *req, eb_ledger_ticket_t *t,
                               const redisReply *r, bool collect);

/* The status of a claim/collect reply, ST_ERROR when malformed; the
 * deadline in *deadline. */
int eb_ledger_claims_status(const redisReply *r, int64_t *deadline);

/* A master is back or the topology changed: send the acknowledgements
 * that waited (each to whoever serves its ledger now). */
void eb_ledger_claims_flush_acks(eb_ledger_t *l);

/* The ledger part of a timer key of route (an index), or false when the
 * key cannot be placed (no matching hash tag: counted and logged once). */
bool eb_ledger_claims_part(eb_ledger_t *l, size_t route, const char *key, size_t len,
                           struct lpart *part);

/* libevent timers. @locality loop thread. */
void eb_ledger_claims_on_ack_timer(evutil_socket_t fd, short what, void *arg);
void eb_ledger_claims_on_claim_timer(evutil_socket_t fd, short what, void *arg);
void eb_ledger_claims_on_renew_timer(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------------------
 * ledger_sweep.c
 * --------------------------------------------------------------------- */

bool eb_ledger_sweep_any_route(const eb_ledger_t *l, enum pass_kind kind);
/* One link's sweep cycle, or every link's. */
void eb_ledger_sweep_start(eb_ledger_t *l, struct ledger_link *k);
void eb_ledger_sweep_start_all(eb_ledger_t *l);
void eb_ledger_sweep_abort(struct ledger_link *k);
/* libevent timer: the one room asks for (every link). */
void eb_ledger_sweep_on_timer(evutil_socket_t fd, short what, void *arg);
/* libevent timer, every sweep_interval: the links of masters this replica
 * owns, and every EB_LEDGER_UNOWNED_SWEEP_EVERY-th time the others too. */
void eb_ledger_sweep_on_interval(evutil_socket_t fd, short what, void *arg);
#define EB_LEDGER_UNOWNED_SWEEP_EVERY 10

/* The pass helpers the scan shares (see struct pass). */
int eb_ledger_pass_begin(struct ledger_link *k, struct pass *p, eb_ledger_reply_fn *on_info);
int eb_ledger_pass_on_info(struct pass *p, const struct lreq *req, const redisReply *r);
bool eb_ledger_pass_current(const struct pass *p, const struct lreq *req);
bool eb_ledger_pass_seek(const eb_ledger_t *l, const struct ledger_link *k, struct pass *p,
                         enum pass_kind kind);
void eb_ledger_pass_end(struct pass *p);

/* The ledger part the sweep's pass is at. */
struct lpart eb_ledger_pass_part(const eb_ledger_t *l, const struct pass *p);

/* ------------------------------------------------------------------------
 * ledger_scan.c
 * --------------------------------------------------------------------- */

/* One link's scan (it waits until the link is ready and its master
 * subscribed), or every link's. */
void eb_ledger_scan_start(eb_ledger_t *l, struct ledger_link *k);
void eb_ledger_scan_start_all(eb_ledger_t *l);
/* again: a scan was running, so one is wanted once the link is back. */
void eb_ledger_scan_abort(struct ledger_link *k, bool again);

/* Observed routes on Cluster: probe the slots marked SLOT_PROBE on k for
 * slot ledgers (then sweep k), or stop probing. */
void eb_ledger_probe_start(eb_ledger_t *l, struct ledger_link *k);
void eb_ledger_probe_abort(struct ledger_link *k);

/* Observed routes on Cluster: mark every slot k's master serves for a
 * probe (after a (re)subscription). */
void eb_ledger_probe_all_owned(eb_ledger_t *l, struct ledger_link *k);

/* ------------------------------------------------------------------------
 * ledger_install.c
 * --------------------------------------------------------------------- */

/* FUNCTION LOAD REPLACE <the embedded library>, into a (initialised here):
 * on every connect, and for `expiry-bridge functions load`. */
void eb_ledger_install_load_args(struct eb_redis_argv *a);

#endif
