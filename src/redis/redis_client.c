/* redis_client.c -- one self-maintaining connection to one Redis node:
 * lookup, connect, handshake, the FIFO of commands awaiting replies,
 * liveness, failure, reconnect with backoff (contract in redis_client.h).
 *
 * Built from the redis/ helpers below it, each with its one job:
 *   redis_resolve.c  the name lookup, off the loop thread
 *   redis_conn.c     the hiredis context (the only hiredis-version code)
 *   redis_session.c  the connect timeout, the close deferred out of
 *                    hiredis's callbacks, the backoff between attempts
 *   redis_pending.c  the FIFO whose oldest entry dates an overdue reply
 * Nothing else on the event loop uses those four (`expiry-bridge functions
 * load` borrows redis_conn.c's blocking call, off the loop).
 *
 * @locality loop thread only.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/error.h"
#include "redis/redis_argv.h"
#include "redis/redis_client.h"
#include "redis/redis_conn.h"
#include "redis/redis_pending.h"
#include "redis/redis_reply.h"
#include "redis/redis_session.h"

/* ------------------------------------------------------------------------
 * Tunables
 * --------------------------------------------------------------------- */

/* The liveness tick: a quarter of the reply timeout, so an overdue reply is
 * noticed within 125% of it, but no busier than every 25 ms and no lazier
 * than every 250 ms (the ledger's old fixed tick). */
#define TICK_MIN_MS 25
#define TICK_MAX_MS 250

/* The same failure logged again only after this long; repeats in between
 * are counted into the next line (a Redis that is down for an hour costs
 * 120 lines, not one per attempt). */
#define LOG_REPEAT_MS 30000

/* ------------------------------------------------------------------------
 * Types
 * --------------------------------------------------------------------- */

enum req_kind { REQ_AUTH, REQ_SETNAME, REQ_ROLE, REQ_INFO, REQ_SELECT, REQ_PING, REQ_USER };

static const char *const req_names[] = {"AUTH", "CLIENT SETNAME", "ROLE",   "INFO replication",
                                        "SELECT", "PING",          "command"};

/* One command awaiting its reply, in send order. Owned by the FIFO; freed
 * after its reply (or NULL) was handled. */
struct creq {
    struct eb_pending link; /* first: the FIFO hands it back as a struct creq * */
    enum req_kind kind;
    eb_redis_client_reply_cb *cb; /* REQ_USER */
    void *opaque;                 /* REQ_USER; borrowed */
    char name[32];                /* REQ_USER: "FCALL eb1_claim", for an overdue reply */
};

_Static_assert(offsetof(struct creq, link) == 0, "struct creq must start with its link");

struct eb_redis_client {
    struct event_base *base; /* borrowed */

    /* conf, strings copied */
    char *name, *client_name, *host, *username, *password;
    int port;
    eb_redis_tls_t *tls; /* borrowed, or NULL */
    enum eb_redis_client_kind kind;
    bool require_master;
    int connect_timeout_ms, reply_timeout_ms, idle_ping_ms, tick_ms;
    eb_log_t *log;
    const struct eb_redis_client_handlers *h;
    void *opaque;
    eb_redis_resolver_t *resolver;     /* borrowed or own_resolver */
    eb_redis_resolver_t *own_resolver; /* when conf->resolver was NULL */

    /* owned; none leaves an event registered between attempts or after
     * destroy */
    eb_redis_session_t *sess; /* connect timeout, deferred close, backoff */
    struct event *ev_tick;    /* liveness, while an attempt is open */

    enum eb_redis_client_state state;
    bool started, stopped, destroying;
    int depth; /* > 0 while a callback of ours runs */

    /* the attempt */
    bool open;    /* from the attempt's start to its close */
    bool failing; /* condemned: sess closes it on the loop's next turn */
    eb_redis_lookup_t *lookup;
    eb_redis_conn_t *conn;
    char addr[EB_REDIS_ADDR_MAX];
    bool up;     /* TCP connected */
    int handshake; /* handshake replies still to come */
    int db;        /* selected database */
    bool subscribed;
    int64_t up_ns, last_sent_ns, last_tick_ns;
    uint64_t replies; /* read on this connection: none means a non-Redis peer */
    struct eb_pending_queue pending;

    /* why the attempt ended, until it is reported */
    enum eb_redis_down_cause cause;
    char what[256];
    char detail[256];
    const char *hint; /* static storage */
    bool was_ready;
    enum eb_redis_tls_reason tls_reason;

    uint64_t attempt; /* since the last READY */

    struct eb_redis_down_log *down_log; /* borrowed, or &own_down_log */
    struct eb_redis_down_log own_down_log;
    bool quiet_attempts;
};

/* ------------------------------------------------------------------------
 * State
 * --------------------------------------------------------------------- */

const char *eb_redis_client_state_name(enum eb_redis_client_state st) {
    switch (st) {
    case EB_REDIS_CLIENT_IDLE:
        return "idle";
    case EB_REDIS_CLIENT_CONNECTING:
        return "connecting";
    case EB_REDIS_CLIENT_READY:
        return "ready";
    case EB_REDIS_CLIENT_WAITING:
        return "waiting";
    case EB_REDIS_CLIENT_STOPPED:
        return "stopped";
    }
    return "?";
}

static void set_state(eb_redis_client_t *c, enum eb_redis_client_state st,
                      const struct eb_redis_client_down *down) {
    if (c->state == st)
        return;
    c->state = st;
    eb_log(c->log, EB_LOG_DEBUG, "redis connection state", eb_lf_str("connection", c->name),
           eb_lf_str("to", eb_redis_client_state_name(st)), eb_lf_str("host", c->host),
           eb_lf_int("port", c->port));
    if (c->destroying || !c->h->on_state)
        return;
    c->depth++;
    c->h->on_state(c, st, down, c->opaque);
    c->depth--;
}

/* Condemn the attempt: sess closes it once control is back in the loop.
 * Safe from anywhere; the first verdict of an attempt is the one kept. */
static void fail(eb_redis_client_t *c, enum eb_redis_down_cause cause, const char *what,
                 const char *detail, const char *hint) {
    if (!c->open || c->failing || c->stopped || c->destroying)
        return;
    c->failing = true;
    c->cause = cause;
    if (cause != EB_REDIS_DOWN_TLS)
        c->tls_reason = EB_REDIS_TLS_OK;
    c->was_ready = c->state == EB_REDIS_CLIENT_READY;
    snprintf(c->what, sizeof(c->what), "%s", what ? what : "");
    snprintf(c->detail, sizeof(c->detail), "%s", detail ? detail : "");
    c->hint = hint;
    eb_redis_session_condemn(c->sess);
}

/* ------------------------------------------------------------------------
 * Commands
 * --------------------------------------------------------------------- */

/* Send a command and track it. NULL when it could not be sent. */
static struct creq *send_raw(eb_redis_client_t *c, enum req_kind kind, int argc,
                             const char **argv, const size_t *argvlen) {
    if (!c->conn || c->failing)
        return NULL;
    struct creq *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->kind = kind;
    if (eb_redis_conn_command(c->conn, r, argc, argv, argvlen) != 0) {
        free(r);
        return NULL;
    }
    c->last_sent_ns = eb_mono_ns();
    eb_redis_pending_push(&c->pending, &r->link, c->last_sent_ns);
    return r;
}

static bool send_select(eb_redis_client_t *c, int db) {
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    eb_redis_argv_add_str(&a, "SELECT");
    eb_redis_argv_add_i64(&a, db);
    struct creq *r =
        eb_redis_argv_ok(&a) ? send_raw(c, REQ_SELECT, a.argc, a.argv, a.argvlen) : NULL;
    eb_redis_argv_free(&a);
    if (!r)
        return false;
    c->db = db;
    return true;
}

int eb_redis_client_command(eb_redis_client_t *c, int db, eb_redis_client_reply_cb *cb,
                            void *opaque, int argc, const char **argv, const size_t *argvlen) {
    if (!cb || argc < 1 || !argv)
        return EB_EINVAL;
    if (c->state != EB_REDIS_CLIENT_READY || c->failing || c->subscribed ||
        !eb_redis_conn_alive(c->conn))
        return EB_ESTATE;
    if (db >= 0 && db != c->db && !send_select(c, db))
        return EB_ENOMEM;
    struct creq *r = send_raw(c, REQ_USER, argc, argv, argvlen);
    if (!r)
        return eb_redis_conn_alive(c->conn) ? EB_ENOMEM : EB_ESTATE;
    r->cb = cb;
    r->opaque = opaque;
    /* The command's name, and the function's for FCALL: what an overdue
     * reply is reported as. */
    size_t n0 = argvlen ? argvlen[0] : strlen(argv[0]);
    bool fn = argc > 1 && n0 == 5 && strncasecmp(argv[0], "FCALL", 5) == 0;
    snprintf(r->name, sizeof(r->name), "%.*s%s%.*s", (int)(n0 < 16 ? n0 : 16), argv[0],
             fn ? " " : "", fn ? (int)(argvlen && argvlen[1] < 24 ? argvlen[1] : 24) : 0,
             fn ? argv[1] : "");
    return 0;
}

int eb_redis_client_subscribe(eb_redis_client_t *c, int argc, const char **argv,
                              const size_t *argvlen) {
    if (c->kind != EB_REDIS_CLIENT_SUBSCRIBER || c->state != EB_REDIS_CLIENT_READY ||
        c->failing || !c->conn)
        return EB_ESTATE;
    /* privdata NULL: every reply of the subscription goes to on_message. */
    if (eb_redis_conn_command(c->conn, NULL, argc, argv, argvlen) != 0)
        return EB_ESTATE;
    c->subscribed = true;
    return 0;
}

/* ------------------------------------------------------------------------
 * Handshake: AUTH, CLIENT SETNAME, ROLE
 * --------------------------------------------------------------------- */

static void handshake_step_done(eb_redis_client_t *c) {
    if (--c->handshake > 0 || !c->up || c->failing)
        return;
    c->attempt = 0;
    set_state(c, EB_REDIS_CLIENT_READY, NULL);
}

static void role_known(eb_redis_client_t *c, const char *role, size_t len) {
    char buf[32], hint[256];
    snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1), role);
    if (strcmp(buf, "master") == 0) {
        handshake_step_done(c);
        return;
    }
    char detail[64];
    snprintf(detail, sizeof(detail), "role %s", buf);
    if (strcmp(buf, "slave") == 0 || strcmp(buf, "replica") == 0)
        snprintf(hint, sizeof(hint),
                 "redis at %s:%d is a replica; replicas never publish expired events (they see "
                 "del); point redis.url at the master",
                 c->host, c->port);
    else
        snprintf(hint, sizeof(hint),
                 "redis at %s:%d answers ROLE with '%s', not 'master'; point redis.url at the "
                 "master",
                 c->host, c->port, buf);
    /* The hint names this node: kept in what, which is copied. */
    fail(c, EB_REDIS_DOWN_ROLE, hint, detail, NULL);
}

static void on_role(eb_redis_client_t *c, const redisReply *r) {
    if (eb_redis_reply_is_error(r)) {
        if (eb_redis_reply_error_is(r, "NOAUTH")) {
            fail(c, EB_REDIS_DOWN_AUTH, "redis requires authentication",
                 eb_redis_reply_text(r), NULL);
            return;
        }
        /* ROLE unknown (old server) or forbidden by an ACL: INFO works on
         * both and says the same. */
        eb_log(c->log, EB_LOG_DEBUG, "redis ROLE refused; reading the role from INFO replication",
               eb_lf_str("connection", c->name), eb_lf_str("detail", eb_redis_reply_text(r)),
               eb_lf_str("host", c->host), eb_lf_int("port", c->port));
        const char *argv[] = {"INFO", "replication"};
        if (send_raw(c, REQ_INFO, 2, argv, NULL))
            c->handshake++;
        handshake_step_done(c);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        fail(c, EB_REDIS_DOWN_OWNER, "redis answered ROLE unexpectedly", "", NULL);
        return;
    }
    role_known(c, r->element[0]->str, r->element[0]->len);
}

static void on_info(eb_redis_client_t *c, const redisReply *r) {
    const char *line = NULL;
    if (!eb_redis_reply_is_error(r) && r->type == REDIS_REPLY_STRING)
        line = strstr(eb_redis_reply_text(r), "role:");
    if (!line) {
        /* Managed Redis forbidding both ROLE and INFO: assume a master
         * rather than never working; say so once per connect. */
        eb_log(c->log, EB_LOG_WARN,
               "redis role unknown (ROLE and INFO refused); assuming a master",
               eb_lf_str("connection", c->name), eb_lf_str("host", c->host),
               eb_lf_int("port", c->port),
               eb_lf_str("detail",
                         eb_redis_reply_is_error(r) ? eb_redis_reply_text(r) : "no role: line"));
        role_known(c, "master", 6);
        return;
    }
    line += 5;
    role_known(c, line, strcspn(line, "\r\n"));
}

static void on_handshake_reply(eb_redis_client_t *c, const struct creq *req,
                               const redisReply *r) {
    switch (req->kind) {
    case REQ_AUTH:
        if (eb_redis_reply_is_error(r))
            fail(c, EB_REDIS_DOWN_AUTH, "redis AUTH failed", eb_redis_reply_text(r), NULL);
        else
            handshake_step_done(c);
        break;
    case REQ_SETNAME:
        /* A name is a courtesy to operators; an ACL may forbid it. */
        handshake_step_done(c);
        break;
    case REQ_ROLE:
        on_role(c, r);
        break;
    case REQ_INFO:
        on_info(c, r);
        break;
    case REQ_SELECT:
        if (eb_redis_reply_is_error(r))
            fail(c, EB_REDIS_DOWN_OWNER, "redis SELECT failed", eb_redis_reply_text(r), NULL);
        break;
    case REQ_PING:
    case REQ_USER:
        break;
    }
}

/* Pipeline the handshake behind the connect: one round trip for all. */
static bool send_handshake(eb_redis_client_t *c) {
    c->handshake = 1; /* the TCP connect itself; released in on_connect */
    if (c->username || c->password) {
        struct eb_redis_argv a;
        eb_redis_conn_auth_args(&a, c->username, c->password);
        struct creq *r = send_raw(c, REQ_AUTH, a.argc, a.argv, a.argvlen);
        eb_redis_argv_free(&a);
        if (!r)
            return false;
        c->handshake++;
    }
    if (c->client_name) {
        const char *argv[] = {"CLIENT", "SETNAME", c->client_name};
        if (!send_raw(c, REQ_SETNAME, 3, argv, NULL))
            return false;
        c->handshake++;
    }
    if (c->require_master) {
        const char *argv[] = {"ROLE"};
        if (!send_raw(c, REQ_ROLE, 1, argv, NULL))
            return false;
        c->handshake++;
    }
    return true;
}

/* ------------------------------------------------------------------------
 * hiredis connection events
 * --------------------------------------------------------------------- */

/* A TLS failure, in the words redis_conn.c found for it.
 * @locality loop thread, inside hiredis. */
static void fail_tls(eb_redis_client_t *c, enum eb_redis_tls_reason reason, const char *detail) {
    if (c->failing)
        return;
    fail(c, EB_REDIS_DOWN_TLS, NULL, detail, eb_redis_tls_reason_hint(reason));
    c->tls_reason = reason;
}

/* @locality loop thread, inside hiredis. */
static void conn_on_connect(eb_redis_conn_t *conn, bool ok, const char *err, void *opaque) {
    eb_redis_client_t *c = opaque;
    enum eb_redis_tls_reason tls = eb_redis_conn_tls_failure(conn);
    c->depth++;
    if (!ok && tls != EB_REDIS_TLS_OK) {
        fail_tls(c, tls, err);
    } else if (!ok) {
        fail(c, EB_REDIS_DOWN_CONNECT, NULL, err, NULL);
    } else {
        c->up = true;
        c->up_ns = eb_mono_ns();
        eb_redis_session_connected(c->sess);
        handshake_step_done(c);
    }
    c->depth--;
}

/* Why a connection went away, from hiredis's words and what it read. */
static enum eb_redis_down_cause lost_cause(const eb_redis_client_t *c, const char *err) {
    if (strncmp(err, "NOPERM", 6) == 0 || strncmp(err, "NOAUTH", 6) == 0 ||
        strncmp(err, "WRONGPASS", 9) == 0)
        return EB_REDIS_DOWN_AUTH; /* an error reply on a subscribed connection */
    /* A TLS port resets a plaintext client right after its first bytes (or
     * answers with a TLS alert hiredis cannot parse): nothing was read. */
    if (c->replies == 0 || strstr(err, "Protocol error") != NULL)
        return EB_REDIS_DOWN_NOT_REDIS;
    return EB_REDIS_DOWN_LOST;
}

/* @locality loop thread, inside hiredis. */
static void conn_on_disconnect(eb_redis_conn_t *conn, const char *err, void *opaque) {
    eb_redis_client_t *c = opaque;
    enum eb_redis_tls_reason tls = eb_redis_conn_tls_failure(conn);
    c->depth++;
    if (tls != EB_REDIS_TLS_OK)
        fail_tls(c, tls, err);
    else
        fail(c, lost_cause(c, err), NULL, err, NULL);
    c->depth--;
}

/* @locality loop thread, inside hiredis. */
static void conn_on_reply(eb_redis_conn_t *conn, const redisReply *r, void *privdata,
                          void *opaque) {
    eb_redis_client_t *c = opaque;
    struct creq *req = privdata;
    if (!req) {
        /* A subscription's reply: the hot path of the keyevent source. */
        if (r && c->h->on_message) {
            c->replies++;
            c->depth++;
            c->h->on_message(c, r, c->opaque);
            c->depth--;
        }
        return;
    }
    eb_redis_pending_remove(&c->pending, &req->link);
    c->depth++;
    if (r)
        c->replies++;
    if (req->kind == REQ_USER)
        req->cb(r, req->opaque);
    else if (r && !c->failing)
        on_handshake_reply(c, req, r);
    c->depth--;
    free(req);
}

static const struct eb_redis_conn_handlers conn_handlers = {
    conn_on_connect,
    conn_on_disconnect,
    conn_on_reply,
};

/* ------------------------------------------------------------------------
 * Attempts
 * --------------------------------------------------------------------- */

/* The address is known: connect (TLS verifies the host's name, not the
 * address) and pipeline the handshake. */
static void connect_to(eb_redis_client_t *c) {
    char err[256];
    c->conn = eb_redis_conn_new(c->base, c->addr, c->port, &conn_handlers, c, err, sizeof(err));
    if (!c->conn) {
        fail(c, EB_REDIS_DOWN_CONNECT, NULL, err, NULL);
        return;
    }
    if (c->tls && eb_redis_conn_start_tls(c->conn, c->tls, c->host, err, sizeof(err)) != 0) {
        enum eb_redis_tls_reason tls = eb_redis_conn_tls_failure(c->conn);
        if (tls != EB_REDIS_TLS_OK)
            fail_tls(c, tls, err);
        else
            fail(c, EB_REDIS_DOWN_CONNECT, NULL, err, NULL);
        return;
    }
    if (!send_handshake(c))
        fail(c, EB_REDIS_DOWN_CONNECT, NULL, "the handshake could not be queued", NULL);
}

/* @locality loop thread (the resolver's event). */
static void on_resolved(bool ok, const char *ip, const char *errstr, void *opaque) {
    eb_redis_client_t *c = opaque;
    c->lookup = NULL;
    c->depth++;
    if (!ok) {
        fail(c, EB_REDIS_DOWN_RESOLVE, NULL, errstr, NULL);
    } else {
        snprintf(c->addr, sizeof(c->addr), "%s", ip);
        connect_to(c);
    }
    c->depth--;
}

static void attempt_open(eb_redis_client_t *c) {
    char err[256];
    c->attempt++;
    c->open = true;
    c->failing = false;
    c->up = c->subscribed = false;
    c->handshake = 0;
    c->db = 0;
    c->replies = 0;
    c->addr[0] = '\0';
    c->last_tick_ns = 0;
    c->cause = EB_REDIS_DOWN_NONE;
    set_state(c, EB_REDIS_CLIENT_CONNECTING, NULL);
    if (c->stopped || !c->open)
        return; /* on_state stopped us */
    eb_redis_session_opening(c->sess, c->connect_timeout_ms);
    struct timeval tick = eb_ms_tv(c->tick_ms);
    event_add(c->ev_tick, &tick);
    c->lookup = eb_redis_resolve(c->resolver, c->host, on_resolved, c, err, sizeof(err));
    if (!c->lookup)
        fail(c, EB_REDIS_DOWN_RESOLVE, NULL, err, NULL);
}

/* Close the attempt. Never from inside a hiredis callback of this client
 * (depth == 0): pending commands see NULL replies from here. */
static void attempt_close(eb_redis_client_t *c) {
    eb_redis_conn_t *conn = c->conn;
    event_del(c->ev_tick);
    eb_redis_resolve_cancel(c->lookup);
    c->lookup = NULL;
    c->conn = NULL;
    c->open = c->up = false;
    c->depth++;
    eb_redis_conn_destroy(conn);
    /* hiredis answered every command with NULL; what is left was never
     * sent, and is finished the same way. */
    struct creq *r;
    while ((r = (struct creq *)eb_redis_pending_pop(&c->pending))) {
        if (r->kind == REQ_USER)
            r->cb(NULL, r->opaque);
        free(r);
    }
    c->depth--;
}

/* ------------------------------------------------------------------------
 * The session's handlers (redis_session.h): outside hiredis
 * --------------------------------------------------------------------- */

static void sess_open(void *opaque) {
    attempt_open(opaque);
}

static void sess_close(void *opaque) {
    attempt_close(opaque);
}

static void sess_timed_out(const char *detail, void *opaque) {
    fail(opaque, EB_REDIS_DOWN_TIMEOUT, NULL, detail, NULL);
}

static void sess_retrying(uint32_t delay_ms, void *opaque) {
    eb_redis_client_t *c = opaque;
    c->failing = false;
    struct eb_redis_client_down d = {
        .cause = c->cause,
        .detail = c->detail,
        .what = c->what[0] ? c->what : NULL,
        .hint = c->hint,
        .was_ready = c->was_ready,
        .tls = c->cause == EB_REDIS_DOWN_TLS ? c->tls_reason : EB_REDIS_TLS_OK,
        .retry_in_ms = delay_ms,
        .attempt = c->attempt,
    };
    set_state(c, EB_REDIS_CLIENT_WAITING, &d);
}

static const struct eb_redis_session_handlers sess_handlers = {
    .open = sess_open,
    .close = sess_close,
    .timed_out = sess_timed_out,
    .retrying = sess_retrying,
};

/* Every tick while an attempt is open: an overdue reply means a dead peer
 * (TCP may take many minutes to say so); an idle command connection is
 * PINGed so that the next command does not find it dead. A tick much later
 * than scheduled means this loop was stalled (a slow callback, a paused
 * process): replies may be sitting unread in the socket, so it judges
 * nothing. @locality loop thread (libevent timer). */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    eb_redis_client_t *c = arg;
    int64_t now = eb_mono_ns();
    bool stalled = c->last_tick_ns && now - c->last_tick_ns > 2 * (int64_t)c->tick_ms * 1000000;
    c->last_tick_ns = now;
    if (!c->up || c->failing || stalled)
        return;
    const struct creq *late = (const struct creq *)eb_redis_pending_overdue(
        &c->pending, now, c->up_ns, (int64_t)c->reply_timeout_ms * 1000000);
    if (late && eb_redis_conn_tls_handshaking(c->conn)) {
        char detail[128];
        snprintf(detail, sizeof(detail),
                 "TLS: no handshake answer within %d ms of connecting", c->reply_timeout_ms);
        eb_redis_tls_count(c->tls, EB_REDIS_TLS_HANDSHAKE_TIMEOUT);
        fail_tls(c, EB_REDIS_TLS_HANDSHAKE_TIMEOUT, detail);
        return;
    }
    if (late) {
        char detail[96];
        snprintf(detail, sizeof(detail), "%s reply overdue by more than %d ms",
                 late->name[0] ? late->name : req_names[late->kind], c->reply_timeout_ms);
        fail(c, EB_REDIS_DOWN_DEAD, NULL, detail, NULL);
        return;
    }
    if (c->idle_ping_ms > 0 && c->state == EB_REDIS_CLIENT_READY && !c->subscribed &&
        !c->pending.head && now - c->last_sent_ns > (int64_t)c->idle_ping_ms * 1000000) {
        const char *ping[] = {"PING"};
        (void)send_raw(c, REQ_PING, 1, ping, NULL);
    }
}

/* ------------------------------------------------------------------------
 * Logging a failure
 * --------------------------------------------------------------------- */

/* The words and the setting to fix for each cause. */
static void cause_words(const eb_redis_client_t *c, const struct eb_redis_client_down *d,
                        const char **cause, const char **setting, const char **hint,
                        enum eb_log_level *level) {
    *level = EB_LOG_WARN;
    *hint = d->hint;
    *setting = "redis.url";
    *cause = "failed";
    switch (d->cause) {
    case EB_REDIS_DOWN_RESOLVE:
        *cause = "host name not resolved";
        if (!*hint)
            *hint = "check the host in redis.url (DNS, /etc/hosts)";
        break;
    case EB_REDIS_DOWN_CONNECT:
        *cause = "cannot connect";
        if (!*hint)
            *hint = "is Redis running and reachable at this host and port?";
        break;
    case EB_REDIS_DOWN_TIMEOUT:
        *cause = "connect timed out";
        *setting = "redis.url, redis.connect_timeout";
        break;
    case EB_REDIS_DOWN_AUTH:
        *cause = strncmp(d->detail, "NOPERM", 6) == 0 ? "permission denied" : "authentication refused";
        *setting = "redis.username, redis.password";
        *level = EB_LOG_ERROR;
        break;
    case EB_REDIS_DOWN_ROLE:
        *cause = "not a master";
        *level = EB_LOG_ERROR;
        break;
    case EB_REDIS_DOWN_NOT_REDIS:
        *cause = "closed before any reply";
        *level = EB_LOG_ERROR;
        if (!*hint)
            *hint = eb_redis_conn_tls_unavailable()
                        ? "the server may expect TLS (a rediss:// URL, which this build's "
                          "hiredis cannot speak) or is not Redis"
                        : "the server may expect TLS (a rediss:// URL, redis.tls) or is not "
                          "Redis";
        break;
    case EB_REDIS_DOWN_TLS:
        *cause = "TLS failed";
        *setting = eb_redis_tls_reason_setting(d->tls);
        /* Only a change of settings or certificates helps, but for a
         * server that did not answer in time. */
        *level = d->tls == EB_REDIS_TLS_HANDSHAKE_TIMEOUT ? EB_LOG_WARN : EB_LOG_ERROR;
        break;
    case EB_REDIS_DOWN_DEAD:
        *cause = "no reply";
        *setting = "redis.heartbeat_timeout";
        break;
    case EB_REDIS_DOWN_LOST:
        *cause = "connection lost";
        break;
    case EB_REDIS_DOWN_OWNER:
    case EB_REDIS_DOWN_NONE:
    case EB_REDIS_DOWN_RESET:
        *cause = d->what ? d->what : "failed";
        break;
    }
    if (d->cause == EB_REDIS_DOWN_ROLE && !d->hint)
        *hint = d->what; /* names this node */
    (void)c;
}

void eb_redis_client_log_down(eb_redis_client_t *c, const struct eb_redis_client_down *d,
                              const char *extra_hint) {
    if (!d || d->cause == EB_REDIS_DOWN_RESET || d->cause == EB_REDIS_DOWN_NONE)
        return;
    const char *cause, *setting, *hint;
    enum eb_log_level level;
    cause_words(c, d, &cause, &setting, &hint, &level);
    if (d->was_ready && extra_hint && d->cause != EB_REDIS_DOWN_DEAD)
        hint = extra_hint;
    struct eb_redis_down_log *mem = c->down_log;
    uint64_t repeated = 0;
    if (!d->was_ready && c->quiet_attempts) {
        level = EB_LOG_DEBUG;
    } else {
        int64_t now = eb_mono_ms();
        if (d->cause == mem->cause && mem->ms && now - mem->ms < LOG_REPEAT_MS &&
            strncmp(d->detail, mem->detail, sizeof(mem->detail) - 1) == 0) {
            mem->held++;
            return;
        }
        mem->cause = d->cause;
        snprintf(mem->detail, sizeof(mem->detail), "%s", d->detail);
        mem->ms = now;
        repeated = mem->held;
        mem->held = 0;
    }
    struct eb_log_field f[] = {
        eb_lf_str("connection", c->name),
        eb_lf_str("host", c->host),
        eb_lf_int("port", c->port),
        eb_lf_str("address", c->addr),
        eb_lf_str("cause", cause),
        eb_lf_str("detail", d->detail),
        eb_lf_str("setting", setting),
        eb_lf_int("attempt", (int64_t)d->attempt),
        eb_lf_int("retry_in_ms", d->retry_in_ms),
        eb_lf_int("repeated", (int64_t)repeated),
        eb_lf_str("hint", hint ? hint : ""),
        eb_lf_str("tls_reason", eb_redis_tls_reason_name(d->tls)),
    };
    /* hint and tls_reason are the last two: left off when empty. */
    size_t nf = hint ? 11 : 10;
    if (d->tls != EB_REDIS_TLS_OK) {
        if (!hint)
            f[nf] = f[11];
        nf++;
    }
    eb_log_write(c->log, level, d->was_ready ? "redis connection lost" : "redis connect failed", f,
                 nf);
}

/* ------------------------------------------------------------------------
 * Public API
 * --------------------------------------------------------------------- */

static int conf_ms(int v, int def) {
    return v > 0 ? v : def;
}

static char *dup_opt(const char *v, bool *oom) {
    if (!v)
        return NULL;
    char *d = strdup(v);
    if (!d)
        *oom = true;
    return d;
}

static void free_fields(eb_redis_client_t *c) {
    eb_redis_session_destroy(c->sess);
    if (c->ev_tick)
        event_free(c->ev_tick);
    eb_redis_resolver_destroy(c->own_resolver);
    free(c->name);
    free(c->client_name);
    free(c->host);
    free(c->username);
    if (c->password) {
        /* A freed secret should not linger in the heap. */
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    free(c);
}

eb_redis_client_t *eb_redis_client_new(struct event_base *base,
                                       const struct eb_redis_client_conf *conf, char *errstr,
                                       size_t errstr_size) {
    if (!base || !conf || !conf->host || !*conf->host || !conf->handlers ||
        (conf->kind == EB_REDIS_CLIENT_SUBSCRIBER && !conf->handlers->on_message)) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                     "redis client needs an event base, a host and handlers");
        return NULL;
    }
    if (conf->port <= 0 || conf->port > 65535) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "redis port %d is out of range", conf->port);
        return NULL;
    }
    if (conf->connect_timeout_ms < 0 || conf->reply_timeout_ms < 0 || conf->idle_ping_ms < 0 ||
        conf->reconnect_min_ms < 0 || conf->reconnect_max_ms < 0) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "redis timings must not be negative");
        return NULL;
    }
    eb_redis_client_t *c = calloc(1, sizeof(*c));
    if (!c) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    bool oom = false;
    c->base = base;
    c->name = dup_opt(conf->name ? conf->name : "redis", &oom);
    c->client_name = dup_opt(conf->client_name, &oom);
    c->host = dup_opt(conf->host, &oom);
    c->port = conf->port;
    c->tls = conf->tls;
    /* An empty user is no user; an empty password with a user is the
     * password of a `nopass` user, sent as such. */
    c->username = conf->username && *conf->username ? dup_opt(conf->username, &oom) : NULL;
    c->password = conf->password && (*conf->password || c->username)
                      ? dup_opt(conf->password, &oom)
                      : NULL;
    c->kind = conf->kind;
    c->require_master = conf->require_master;
    c->connect_timeout_ms = conf_ms(conf->connect_timeout_ms, EB_REDIS_DEFAULT_CONNECT_TIMEOUT_MS);
    c->reply_timeout_ms = conf_ms(conf->reply_timeout_ms, EB_REDIS_DEFAULT_REPLY_TIMEOUT_MS);
    c->idle_ping_ms = conf->idle_ping_ms;
    c->tick_ms = c->reply_timeout_ms / 4;
    c->tick_ms = c->tick_ms < TICK_MIN_MS ? TICK_MIN_MS
                 : c->tick_ms > TICK_MAX_MS ? TICK_MAX_MS
                                            : c->tick_ms;
    c->log = conf->log;
    c->down_log = conf->down_log ? conf->down_log : &c->own_down_log;
    c->quiet_attempts = conf->quiet_attempts;
    c->h = conf->handlers;
    c->opaque = conf->opaque;
    c->state = EB_REDIS_CLIENT_IDLE;
    if (oom) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free_fields;
    }
    c->resolver = conf->resolver;
    if (!c->resolver) {
        c->resolver = c->own_resolver = eb_redis_resolver_new(base, errstr, errstr_size);
        if (!c->resolver)
            goto err_free_fields;
    }
    c->sess = eb_redis_session_new(
        base, (uint32_t)conf_ms(conf->reconnect_min_ms, EB_REDIS_DEFAULT_RECONNECT_MIN_MS),
        (uint32_t)conf_ms(conf->reconnect_max_ms, EB_REDIS_DEFAULT_RECONNECT_MAX_MS),
        &sess_handlers, c, errstr, errstr_size);
    if (!c->sess)
        goto err_free_fields;
    c->ev_tick = event_new(base, -1, EV_PERSIST, on_tick, c);
    if (!c->ev_tick) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free_fields;
    }
    return c;

err_free_fields:
    free_fields(c);
    return NULL;
}

int eb_redis_client_start(eb_redis_client_t *c) {
    if (c->started || c->stopped)
        return EB_ESTATE;
    c->started = true;
    attempt_open(c);
    return 0;
}

void eb_redis_client_established(eb_redis_client_t *c) {
    eb_redis_session_established(c->sess);
}

void eb_redis_client_fail(eb_redis_client_t *c, enum eb_redis_down_cause cause, const char *what,
                          const char *detail, const char *hint) {
    fail(c, cause, what, detail, hint);
}

void eb_redis_client_reset(eb_redis_client_t *c) {
    fail(c, EB_REDIS_DOWN_RESET, "reset by its owner", "", NULL);
}

void eb_redis_client_stop(eb_redis_client_t *c) {
    if (!c || c->stopped)
        return;
    c->stopped = true;
    eb_redis_session_stop(c->sess);
    if (c->open) {
        if (c->depth > 0) {
            /* Inside one of our callbacks: close once control returns. */
            c->failing = true;
            eb_redis_session_condemn(c->sess);
        } else {
            attempt_close(c);
        }
    }
    struct eb_redis_client_down d = {.cause = EB_REDIS_DOWN_NONE, .detail = "stopped"};
    set_state(c, EB_REDIS_CLIENT_STOPPED, &d);
}

enum eb_redis_client_state eb_redis_client_state(const eb_redis_client_t *c) {
    return c->state;
}

int64_t eb_redis_client_read_ns(const eb_redis_client_t *c) {
    int64_t t = c->depth > 0 && c->conn ? eb_redis_conn_read_ns(c->conn) : 0;
    return t ? t : eb_mono_ns();
}

const char *eb_redis_client_host(const eb_redis_client_t *c) {
    return c->host;
}

int eb_redis_client_port(const eb_redis_client_t *c) {
    return c->port;
}

const char *eb_redis_client_address(const eb_redis_client_t *c) {
    return c->addr;
}

void eb_redis_client_destroy(eb_redis_client_t *c) {
    if (!c)
        return;
    if (c->depth > 0) {
        fprintf(stderr, "eb_redis_client_destroy() called from inside its own callback\n");
        abort();
    }
    c->destroying = true;
    c->stopped = true;
    if (c->open)
        attempt_close(c);
    free_fields(c);
}
