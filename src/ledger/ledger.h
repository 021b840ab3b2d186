/* ledger.h -- the deadline ledger: every timer a shop arms reaches Kafka at
 * least once, across bridge crashes, Redis restarts and Kafka outages, with
 * bounded lateness (docs/ledger.md).
 *
 * A route with `ledger: armed` or `observed` has a ledger in Redis: a sorted
 * set `<ledger.key_prefix>{<route>}` of timer key -> deadline (ms), written
 * by the shipped Redis Function library (config/redis/eb_timers.lua) when
 * the application arms a timer (armed), or by the bridge itself from
 * `expire` notifications and a SCAN of the route's prefix (observed).
 *
 * This module owns its own Redis connection, a redis_client.h command
 * client (not the source's: it must keep acknowledging while a SIGTERM
 * drain runs after the subscriber stopped, and its sweeps must not delay
 * the source's heartbeats). On every (re)connect it loads the function
 * library (FUNCTION LOAD REPLACE), then:
 *
 *   live    an `expired` notification of a ledgered route: claim the timer
 *           (FCALL eb1_claim: its deadline and companion payload, and a
 *           claim so no other replica produces it), hand it to the pipeline
 *   sweep   every sweep_interval, page through overdue entries (eb1_due,
 *           bounded per step); per entry eb1_collect touches the key (an
 *           overdue key is expired now, Redis announces it) and claims a
 *           key that is gone: produced as `delivery: recovered`
 *   ack     only when Kafka confirmed the event (eb_ledger_done): eb1_ack
 *           removes the entry if it still holds that deadline and deletes
 *           the payload. A crash anywhere before leaves the entry in place.
 *   observe (observed routes) `expire` -> eb1_observe records PEXPIRETIME;
 *           `del`/`persist` -> eb1_drop; after every (re)subscription a SCAN
 *           of the route prefixes records what was armed meanwhile.
 *
 * Routes with a `payload` but `ledger: off` take the live path too (for the
 * companion key) without an entry to claim or acknowledge.
 *
 * Memory: every timer in the bridge's hands holds a ticket, and tickets are
 * bounded by kafka.queue.max_events (at least 1000). A live expiry of a
 * ledgered route past the bound is not claimed -- its entry stays in Redis, unclaimed, counted in
 * eb_ledger_deferred_total -- and the sweep stops at the bound too and
 * starts again when half of it is free. What the bridge cannot hold stays
 * in Redis, so a burst costs Redis memory, not the bridge's.
 *
 * Ownership: the ledger copies what it keeps from the configuration except
 * the struct itself, which is borrowed like the pipeline's (replaced with
 * eb_ledger_set_config()). Tickets are owned by the ledger.
 *
 * @locality loop thread: every function and callback.
 */
#ifndef EB_LEDGER_H
#define EB_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/event.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "redis/redis_source.h"
#include "redis/redis_topology.h"

struct event_base;
typedef struct eb_ledger eb_ledger_t;

/* One timer on its way to Kafka. Opaque; handed back exactly once with
 * eb_ledger_done(). */
typedef struct eb_ledger_ticket eb_ledger_ticket_t;

/* A timer the pipeline is to produce. Every pointer is borrowed until the
 * emit callback returns. */
struct eb_ledger_timer {
    int db;
    const char *key; /* the timer key, any bytes */
    size_t key_len;
    enum eb_delivery delivery; /* live (a notification) or recovered (the sweep) */
    int64_t deadline_ms;       /* < 0: unknown (not armed through the ledger) */
    bool has_payload;          /* the route names a companion key */
    const char *payload_json;  /* valid JSON text, or NULL for null */
    size_t payload_len;
    int64_t recv_mono_ns; /* when the bridge learnt of it (CLOCK_MONOTONIC) */
    int64_t recv_real_us; /* the same, CLOCK_REALTIME µs: the event's time */
    /* "host:port" of the master that announced it (live) or whose ledger
     * held it (recovered), or NULL when unknown. */
    const char *node;
    eb_ledger_ticket_t *ticket;
};

/* Produce t. The callee must call eb_ledger_done(ticket, ...) exactly once:
 * at once when it could not hand the event to Kafka, else from the delivery
 * report. */
typedef void(eb_ledger_emit_cb)(const struct eb_ledger_timer *t, void *opaque);

struct eb_ledger_conf {
    eb_log_t *log;         /* borrowed; outlives the ledger */
    eb_metrics_t *metrics; /* borrowed; outlives the ledger */
    eb_ledger_emit_cb *emit;
    void *opaque; /* passed to emit; borrowed */
};

/* True when cfg has a route that needs the ledger (ledger: armed/observed,
 * or a payload): only then does the daemon build one. */
bool eb_ledger_needed(const struct eb_config *cfg);

/* Create (does not connect yet). cfg is borrowed until replaced with
 * eb_ledger_set_config() or the ledger is destroyed; connection settings
 * are copied from it now (a rediss URL's certificates are read). NULL +
 * errstr when out of memory or a TLS file does not load. Free with
 * eb_ledger_destroy(). */
eb_ledger_t *eb_ledger_new(struct event_base *base, const struct eb_ledger_conf *conf,
                           const struct eb_config *cfg, char *errstr, size_t errstr_size);

/* Swap in new routes and ledger settings (a reload); changed credentials,
 * timings or TLS settings reconnect every link. Tickets in flight keep
 * their ledger. Returns 0; or EB_ECONFIG (a TLS certificate file that does
 * not load) or EB_ENOMEM, + errstr, and then the old configuration stays. */
int eb_ledger_set_config(eb_ledger_t *l, const struct eb_config *cfg, char *errstr,
                         size_t errstr_size);

/* Connect, load the library, start sweeping. 0, or EB_ESTATE when started. */
int eb_ledger_start(eb_ledger_t *l);

/* Shutdown: no new sweep, scan or claim from here; acknowledgements of
 * what Kafka confirms still go out. Safe to call twice. */
void eb_ledger_stop(eb_ledger_t *l);

/* True while a timer handed to the pipeline awaits Kafka or its
 * acknowledgement in Redis, and Redis is reachable (a drain waits for it;
 * with Redis gone there is nothing to wait for: the entries stay and are
 * recovered after a restart). */
bool eb_ledger_busy(const eb_ledger_t *l);

/* A notification of event `expired` whose key matched route `route` (an
 * index into the current configuration's routes) with ledger != off or a
 * payload. Claims it and emits it (or not: another replica holds it, it
 * was delivered already). When the ledger's connection is down, or it
 * holds as many timers as its bound (kafka.queue.max_events, at least
 * 1000), it is not claimed and left in Redis to the sweep. n is borrowed
 * for the call. */
void eb_ledger_on_expired(eb_ledger_t *l, size_t route, const struct eb_notification *n);

/* A notification of one of the configuration's ledger_events (expire, del,
 * persist) whose key would be routed, on expiry, to `route`: observed mode
 * bookkeeping. Ignored for routes that are not observed. */
void eb_ledger_on_bookkeeping(eb_ledger_t *l, size_t route, const struct eb_notification *n);

/* The fate of an emitted timer: delivered (Kafka confirmed) acknowledges it
 * in the ledger; otherwise it is left to be retried once its claim ran out.
 * ticket is consumed. */
void eb_ledger_done(eb_ledger_t *l, eb_ledger_ticket_t *ticket, bool delivered);

/* The Redis source's state (eb_redis_state_cb): after every (re)subscription
 * notifications may have been lost, so the ledger sweeps at once and
 * observed routes SCAN their prefixes. */
void eb_ledger_on_source_state(eb_ledger_t *l, enum eb_redis_state state);

/* Where the masters are (redis_topology.h): the ledger keeps one
 * connection per master the topology reports, and routes each command to
 * the master serving its ledger's slot. Must be called before
 * eb_ledger_start() (no master is known before), and again when a reload
 * replaces the source (its subscription counts as a new one: everything is
 * swept). t is borrowed until replaced or the ledger is destroyed. */
void eb_ledger_set_topology(eb_ledger_t *l, eb_redis_topology_t *t);

/* The topology's on_units_changed: masters came or went, or on Cluster
 * which master serves which slot changed. Links follow; waiting
 * acknowledgements and redirected commands go to the new owners. */
void eb_ledger_on_units_changed(eb_ledger_t *l);

/* The topology's on_unit_subscribed: master u was (re)subscribed, so what
 * it announced meanwhile was lost; its ledgers are swept at once (timers
 * whose notification a failover hid come out as `recovered`), observed
 * routes SCAN it, and on Cluster its slot ledgers are probed. NULL l is a
 * no-op. */
void eb_ledger_on_unit_subscribed(eb_ledger_t *l, const struct eb_redis_unit *u);

/* One summary line in the log (pending, overdue, recovered, ...). */
void eb_ledger_log_stats(const eb_ledger_t *l);

/* NULL is a no-op. Tickets still out are forgotten: the pipeline must not
 * hand them back afterwards (destroy the sink and the pipeline first).
 * Leaves no event registered on the base. */
void eb_ledger_destroy(eb_ledger_t *l);

/* ---- `expiry-bridge functions load` ----------------------------------- */

/* The Redis Function library compiled into the binary (the text of
 * config/redis/eb_timers.lua), static storage, and its length. */
const char *eb_ledger_library(size_t *len);

/* Connect to cfg's Redis (blocking, with redis.connect_timeout), AUTH, and
 * FUNCTION LOAD REPLACE the library -- with Sentinel on the master the
 * first answering sentinel names; on Redis Cluster on every master
 * CLUSTER NODES of the first seed that answers lists (functions are per
 * node). *nodes (may be NULL) receives on how many servers it was loaded.
 * Returns 0, EB_EIO when Redis cannot be reached, or EB_EREDIS when it
 * refused (the reason in errstr, naming the master on Cluster). */
int eb_ledger_install(const struct eb_config *cfg, size_t *nodes, char *errstr,
                      size_t errstr_size);

/* ---- pure helpers (unit-tested) --------------------------------------- */

/* A route's ledger key: prefix "{" route "}". Appended to out. */
void eb_ledger_key(struct eb_buf *out, const char *prefix, const char *route);

/* Bucket b's ledger key (ledger.buckets > 1): prefix "{" route ":" b "}",
 * b in decimal. Appended to out. */
void eb_ledger_bucket_key(struct eb_buf *out, const char *prefix, const char *route,
                          unsigned bucket);

/* The bucket a timer key names: its hash tag (the text between its first
 * '{' and the first '}' after it, as Cluster hashes it) must be
 * `<route>:<b>` with b in canonical decimal (no sign, no leading zero)
 * below nbuckets. Returns b, or -1 when the key has no such tag. */
int eb_ledger_bucket_of(const char *key, size_t len, const char *route, unsigned nbuckets);

/* Observed mode on Cluster keeps one ledger per slot, in that slot, so that
 * recording a timer (which reads the key) is one single-slot FCALL:
 * prefix "{" tag "}:" route, where tag hashes to the slot. */
void eb_ledger_slot_key(struct eb_buf *out, const char *prefix, const char *route,
                        const char *tag);

/* Longest slot tag: every slot has one of at most this many characters. */
#define EB_LEDGER_SLOT_TAG_MAX 4

/* tag[s]: the first string over [0-9a-z] -- by length, then in
 * lexicographic order -- whose CRC16 slot (keyslot.h) is s. A fixed
 * function: ledgers named with it stay found by every version. */
struct eb_ledger_slot_tags {
    char tag[16384][EB_LEDGER_SLOT_TAG_MAX + 1];
};

/* Fill t (about 170,000 CRCs of at most 4 bytes: a millisecond or two).
 * 0, or EB_EINVAL if a slot had no tag (it never happens). */
int eb_ledger_slot_tags_build(struct eb_ledger_slot_tags *t);

/* A SCAN MATCH pattern for keys starting with prefix[0..len): glob
 * metacharacters escaped, then '*'. Appended to out. */
void eb_ledger_scan_pattern(struct eb_buf *out, const char *prefix, size_t len);

/* One byte string of a companion payload reply. */
struct eb_ledger_bytes {
    const char *p;
    size_t len;
};

/* The JSON embedded as data.payload for a companion value, appended to out
 * (docs/event.md, "payload"):
 *   kind "string", one value: the value itself when it is one valid JSON
 *     text (as event.h accepts it), without the whitespace between its
 *     tokens (one line, whatever indent the application stored); else a
 *     JSON string when it is UTF-8;
 *     else {"base64":"<standard base64>"}
 *   kind "hash", field/value pairs: an object of JSON strings; when any
 *     field or value is not UTF-8, {"base64":{"<b64 field>":"<b64 value>"}}
 *   anything else ("missing", or a type we do not embed): null
 * Returns true when a value was embedded, false for null. */
bool eb_ledger_payload_json(struct eb_buf *out, const char *kind,
                            const struct eb_ledger_bytes *vals, size_t nvals);

#endif
