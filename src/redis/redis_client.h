/* redis_client.h -- one connection to one Redis node that keeps itself
 * connected: the one place where the bridge connects to Redis.
 *
 * Every Redis connection of the bridge is one of these: the keyevent
 * source's subscriber and command connections (redis_source.h) and the
 * deadline ledger's (ledger.h). A topology layer (Cluster, Sentinel) is to
 * create one per master and destroy it when the master goes away, so a
 * client is self-contained: its own timers, backoff and name lookup, and
 * nothing that outlives it.
 *
 * One attempt, then again after a backoff whenever it fails:
 *
 *   resolve host (redis_resolve.h: never blocks the loop)
 *   -> TCP connect to the address              } within connect_timeout
 *   -> [TLS, verifying host: redis_tls.h]      } with the first writes
 *   -> [AUTH user pass | AUTH pass]            } pipelined, one round trip
 *   -> [CLIENT SETNAME client_name]            }
 *   -> [ROLE, or INFO replication where ROLE is refused: require a master]
 *   -> READY: on_state(READY); the owner runs its own setup (FUNCTION LOAD,
 *      CONFIG, SUBSCRIBE) and calls eb_redis_client_established() when
 *      the connection does what it is for, which resets the backoff.
 *
 * AUTH is sent whenever a user or a password is set: an ACL user with
 * `nopass` has an empty password and still has to name itself.
 *
 * Kinds. A command client keeps a FIFO of the commands it sent, each with
 * its callback (replies come in order); the oldest one's age tells a dead
 * connection from a busy one (reply_timeout), and an idle one is PINGed
 * (idle_ping). A subscriber client takes (P)SUBSCRIBE commands and hands
 * every pub/sub reply to on_message; its liveness is the owner's (hiredis
 * 0.14 swallows PING on a subscribed connection, so the source checks it
 * with a heartbeat channel).
 *
 * Failures. Whatever fails -- lookup, connect, handshake, an overdue reply,
 * a lost connection, or the owner's own verdict (eb_redis_client_fail())
 * -- the connection is closed once control is back in the loop, never
 * inside a hiredis callback (redis_conn.h), pending command callbacks run
 * with NULL, and the next attempt starts after a capped exponential backoff
 * with full jitter (backoff.h). on_state() says so with the cause, so the
 * owner can count it and log it with eb_redis_client_log_down(): one line
 * per failed attempt naming the cause and the setting to fix, the same
 * cause repeated at most once per 30 s.
 *
 * Defaults: a 0 in a conf timing takes EB_REDIS_DEFAULT_*, the same values
 * as the configuration's defaults (config_schema.c; a unit test holds them
 * equal), so a client built by hand behaves like the daemon's.
 *
 * Ownership: the handle is owned by whoever called eb_redis_client_new()
 * and freed with eb_redis_client_destroy(); conf strings are copied;
 * handlers, opaque, log and resolver are borrowed for the handle's life.
 *
 * @locality every function and every callback runs on the loop thread.
 */
#ifndef EB_REDIS_CLIENT_H
#define EB_REDIS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "redis/redis_resolve.h"
#include "redis/redis_tls.h"

struct event_base;
struct redisReply; /* <hiredis/hiredis.h>, read with redis_reply.h */
typedef struct eb_redis_client eb_redis_client_t;

/* One set of connection defaults for every client (and the config's). */
#define EB_REDIS_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define EB_REDIS_DEFAULT_REPLY_TIMEOUT_MS   5000 /* redis.heartbeat_timeout */
#define EB_REDIS_DEFAULT_RECONNECT_MIN_MS   100
#define EB_REDIS_DEFAULT_RECONNECT_MAX_MS   10000

enum eb_redis_client_kind {
    EB_REDIS_CLIENT_COMMANDS = 0, /* request/reply, FIFO, overdue check, idle PING */
    EB_REDIS_CLIENT_SUBSCRIBER,   /* (P)SUBSCRIBE; messages to on_message */
};

enum eb_redis_client_state {
    EB_REDIS_CLIENT_IDLE = 0,   /* created, not started */
    EB_REDIS_CLIENT_CONNECTING, /* resolving, connecting, handshaking */
    EB_REDIS_CLIENT_READY,      /* handshake done: commands flow */
    EB_REDIS_CLIENT_WAITING,    /* failed; the next attempt is scheduled */
    EB_REDIS_CLIENT_STOPPED,    /* eb_redis_client_stop(): never again */
};

/* Why an attempt or a connection ended (EB_REDIS_CLIENT_WAITING/STOPPED). */
enum eb_redis_down_cause {
    EB_REDIS_DOWN_NONE = 0,  /* stopped by its owner */
    EB_REDIS_DOWN_RESOLVE,   /* the host name did not resolve */
    EB_REDIS_DOWN_CONNECT,   /* TCP connect failed (refused, unreachable) */
    EB_REDIS_DOWN_TIMEOUT,   /* no connection within connect_timeout */
    EB_REDIS_DOWN_AUTH,      /* AUTH refused, or required and not configured */
    EB_REDIS_DOWN_ROLE,      /* not a master where one is required */
    EB_REDIS_DOWN_NOT_REDIS, /* closed before any reply, or not RESP: TLS port? */
    EB_REDIS_DOWN_TLS,       /* the TLS handshake failed or got no answer: tls says why */
    EB_REDIS_DOWN_LOST,      /* the connection went away */
    EB_REDIS_DOWN_DEAD,      /* a reply overdue: the peer stopped answering */
    EB_REDIS_DOWN_OWNER,     /* the owner's verdict: eb_redis_client_fail() */
    EB_REDIS_DOWN_RESET,     /* eb_redis_client_reset(): not a failure */
};

/* What on_state() reports with WAITING and STOPPED. Borrowed until the
 * callback returns. */
struct eb_redis_client_down {
    enum eb_redis_down_cause cause;
    const char *detail;   /* hiredis's or Redis's words, or ours; never NULL */
    const char *what;     /* for OWNER: the owner's message; else NULL */
    const char *hint;     /* what to do about it (the setting to fix), or NULL */
    bool was_ready;       /* the connection had completed its handshake */
    enum eb_redis_tls_reason tls; /* TLS: why; EB_REDIS_TLS_OK for other causes */
    uint32_t retry_in_ms; /* WAITING: when the next attempt starts */
    uint64_t attempt;     /* attempts since the client was last READY */
};

/* Reply to eb_redis_client_command(): exactly once per accepted command,
 * with the reply (borrowed until it returns; read it with redis_reply.h)
 * or NULL when the connection went away first (also during stop and
 * destroy). It may send commands and call any function but destroy. */
typedef void(eb_redis_client_reply_cb)(const struct redisReply *reply, void *opaque);

/* Each may run from inside hiredis: the handle must not be destroyed there
 * (stop it; destroy once control is back in the loop). */
struct eb_redis_client_handlers {
    /* On every change of state. down is NULL unless state is WAITING or
     * STOPPED. Never during eb_redis_client_destroy(). */
    void (*on_state)(eb_redis_client_t *c, enum eb_redis_client_state state,
                     const struct eb_redis_client_down *down, void *opaque);
    /* Subscriber clients: one pub/sub reply (message, pmessage, subscribe
     * confirmations...), borrowed until it returns. NULL for commands. */
    void (*on_message)(eb_redis_client_t *c, const struct redisReply *reply, void *opaque);
};

/* What eb_redis_client_log_down() remembers of its last line, so that the
 * same cause repeated is held back. A plain value struct: zero it. Clients
 * of one owner that fail together (the source's two connections) share
 * one, so a failed attempt is one line, not one per connection. */
struct eb_redis_down_log {
    enum eb_redis_down_cause cause;
    char detail[96];
    int64_t ms;    /* CLOCK_MONOTONIC ms of the last line */
    uint64_t held; /* lines held back since */
};

struct eb_redis_client_conf {
    const char *name;        /* "subscriber", "command", "ledger": logs; copied */
    const char *client_name; /* CLIENT SETNAME, or NULL; copied */
    const char *host;        /* a name or a numeric address; copied */
    int port;
    const char *username; /* ACL user or NULL; copied */
    const char *password; /* or NULL; copied, never logged */
    /* TLS (rediss://) with this context, verifying host, or NULL for
     * plaintext. Borrowed: must outlive the client. */
    eb_redis_tls_t *tls;
    enum eb_redis_client_kind kind;
    bool require_master; /* ROLE (or INFO replication) must say master */
    /* Timings; 0 takes the EB_REDIS_DEFAULT_* value. connect_timeout
     * covers the lookup and the TCP connect; reply_timeout bounds how long
     * a reply may be overdue (command clients). idle_ping_ms: PING a
     * command connection that sent nothing for this long (0: never). */
    int connect_timeout_ms;
    int reply_timeout_ms;
    int idle_ping_ms;
    int reconnect_min_ms;
    int reconnect_max_ms;
    eb_redis_resolver_t *resolver; /* borrowed, shared; NULL: the client makes its own */
    eb_log_t *log;                 /* borrowed; debug lines and eb_redis_client_log_down() */
    struct eb_redis_down_log *down_log; /* borrowed, shared; NULL: the client's own */
    /* Failed attempts (never READY) are logged at debug: for a connection
     * beside another one to the same server with the same settings, whose
     * line already names the cause. A lost READY connection is not. */
    bool quiet_attempts;
    const struct eb_redis_client_handlers *handlers; /* borrowed */
    void *opaque;                                    /* borrowed */
};

/* Create (does not connect yet). NULL + errstr on bad arguments or when out
 * of memory. Free with eb_redis_client_destroy(). */
eb_redis_client_t *eb_redis_client_new(struct event_base *base,
                                       const struct eb_redis_client_conf *conf, char *errstr,
                                       size_t errstr_size);

/* Begin the first attempt; from here the client keeps itself connected
 * until stopped. 0, or EB_ESTATE when started already. */
int eb_redis_client_start(eb_redis_client_t *c);

/* Queue a command on a command client (or on a subscriber before it
 * subscribed). argv is binary-safe and copied; argvlen may be NULL for C
 * strings. db >= 0 runs it in that database (a SELECT goes first when the
 * connection is in another one); db < 0 in whichever is selected. Accepted
 * only while READY: 0 (cb will run exactly once), EB_ESTATE otherwise (cb
 * never runs), EB_ENOMEM. */
int eb_redis_client_command(eb_redis_client_t *c, int db, eb_redis_client_reply_cb *cb,
                            void *opaque, int argc, const char **argv, const size_t *argvlen);

/* Send (P)SUBSCRIBE or (P)UNSUBSCRIBE on a subscriber client while READY:
 * their confirmations and every message come to on_message. 0 or
 * EB_ESTATE. */
int eb_redis_client_subscribe(eb_redis_client_t *c, int argc, const char **argv,
                              const size_t *argvlen);

/* The connection does what its owner opened it for: the next failure waits
 * the shortest delay again. */
void eb_redis_client_established(eb_redis_client_t *c);

/* The owner judged the connection failed (a reply it cannot use, a missing
 * heartbeat): on_state(WAITING) with cause OWNER, what and detail (both
 * copied) and hint (static storage or NULL). Safe from anywhere, including
 * inside callbacks; the close happens once control is back in the loop. A
 * no-op unless CONNECTING or READY, or when already failing. */
void eb_redis_client_fail(eb_redis_client_t *c, enum eb_redis_down_cause cause,
                          const char *what, const char *detail, const char *hint);

/* Reconnect without it being a failure (a partner connection of the same
 * owner failed): as eb_redis_client_fail() with cause RESET. */
void eb_redis_client_reset(eb_redis_client_t *c);

/* No attempt from now on; the connection closes (at once, or once control
 * is back in the loop when called from inside one of its callbacks) and
 * on_state(STOPPED) follows. Safe to call twice. */
void eb_redis_client_stop(eb_redis_client_t *c);

enum eb_redis_client_state eb_redis_client_state(const eb_redis_client_t *c);

/* Inside on_message (or a reply callback): CLOCK_MONOTONIC (ns) when the
 * socket read that brought the reply began (redis_conn.h), so the owner
 * stamps a message without reading the clock itself. Outside a callback,
 * or without a connection: now. */
int64_t eb_redis_client_read_ns(const eb_redis_client_t *c);

/* "idle", "connecting", "ready", "waiting", "stopped". Static storage. */
const char *eb_redis_client_state_name(enum eb_redis_client_state st);

/* The host and port it connects to; the address of the current attempt
 * ("" before the lookup answered). Borrowed for the handle's life. */
const char *eb_redis_client_host(const eb_redis_client_t *c);
int eb_redis_client_port(const eb_redis_client_t *c);
const char *eb_redis_client_address(const eb_redis_client_t *c);

/* Log a WAITING/STOPPED report as one line (nothing for RESET or a plain
 * stop): "redis connect failed" for an attempt that never got READY,
 * "redis connection lost" for one that did, with the connection's name,
 * host, port, address, cause, detail, the setting to fix, the attempt and
 * the retry delay; level warn, error when only a change of configuration
 * can help (AUTH, ROLE, a TLS port), debug for an attempt of a
 * quiet_attempts client. extra_hint (static storage or NULL) replaces the
 * hint of a connection lost or refused after READY (not of one that stopped
 * answering). The same cause again within 30 s (in the
 * conf's down_log) is held back and counted into the next line
 * ("repeated"). */
void eb_redis_client_log_down(eb_redis_client_t *c, const struct eb_redis_client_down *down,
                              const char *extra_hint);

/* NULL is a no-op. Must not be called from inside one of its callbacks
 * (aborts): stop there, destroy once control is back in the loop. Pending
 * command callbacks run with NULL during it; on_state does not. Leaves no
 * event registered on the base. */
void eb_redis_client_destroy(eb_redis_client_t *c);

#endif
