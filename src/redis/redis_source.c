/* redis_source.c -- keyevent notifications from one Redis master: two
 * connections, the connect handshake, subscriptions, heartbeat liveness,
 * reconnect with backoff, gap accounting (contract in redis_source.h).
 *
 * Per (re)connect, a "session":
 *
 *   command conn:    [AUTH] -> ROLE (or INFO replication) -> CONFIG GET
 *                    notify-keyspace-events -> [CONFIG SET merged]  = ready
 *   subscriber conn: [AUTH]                                         = ready
 *   both ready:      (P)SUBSCRIBE every channel + SUBSCRIBE heartbeat
 *   every confirmation read:  EB_REDIS_SUBSCRIBED
 *
 * Any failure on either connection condemns the whole session: it is
 * marked failing and redis_session.c closes both connections once control
 * is back in the loop (hiredis must never see its context freed inside its
 * own callback), then schedules a reconnect with backoff; it also runs the
 * connect timeout.
 *
 * Ownership: the source owns both connections, its libevent events, the
 * pending command requests and copies of every conf string. conf->log and
 * conf->metrics are borrowed.
 *
 * @locality loop thread only.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/notify.h"
#include "redis/redis_argv.h"
#include "redis/redis_conn.h"
#include "redis/redis_pending.h"
#include "redis/redis_reply.h"
#include "redis/redis_session.h"
#include "redis/redis_source.h"

/* ------------------------------------------------------------------------
 * Tunables
 * --------------------------------------------------------------------- */

/* Defaults for 0 in the conf: the same as config.h's, so a caller that
 * builds the conf by hand behaves like the daemon. */
#define DEFAULT_CONNECT_TIMEOUT_MS    5000
#define DEFAULT_HEARTBEAT_INTERVAL_MS 1000
#define DEFAULT_HEARTBEAT_TIMEOUT_MS  5000
#define DEFAULT_RECONNECT_MIN_MS      100
#define DEFAULT_RECONNECT_MAX_MS      10000

/* Channel -> (db, event) cache. A subscriber sees (databases in use) x
 * (events) channels, typically a handful; 16 covers common setups and a
 * miss only costs a parse. Names longer than CHAN_MAX are never cached
 * (ours are at most ~40 bytes: "__keyevent@<db>__:<event>"). */
#define CHAN_CACHE_SIZE 16
#define CHAN_MAX        56

/* Longest "__keyevent@<db>__:<event>" or pattern we build: 11 + 10 + 3 +
 * the longest event name (21) + NUL, rounded up. */
#define CHAN_BUF 64

/* Pseudo event ids in the channel cache. */
#define EV_UNKNOWN   (-1) /* not a keyevent channel of ours: ignored */
#define EV_HEARTBEAT (-2) /* our private heartbeat channel */

#define HB_PREFIX "__expiry_bridge:hb:"

/* ------------------------------------------------------------------------
 * Types
 * --------------------------------------------------------------------- */

enum req_kind {
    REQ_AUTH,
    REQ_ROLE,
    REQ_INFO,
    REQ_CONFIG_GET,
    REQ_CONFIG_SET,
    REQ_PUBLISH,
    REQ_SETNAME,
    REQ_USER,
};

static const char *const req_names[] = {"AUTH",           "ROLE",       "INFO replication",
                                        "CONFIG GET",     "CONFIG SET", "PUBLISH heartbeat",
                                        "CLIENT SETNAME", "command"};

/* One command in flight on the command connection. Replies arrive in send
 * order, so the pending requests form a FIFO whose head is the oldest: its
 * age is what "a reply is overdue" measures. Owned by the queue; freed
 * after its reply (or NULL) was handled. */
struct cmd_req {
    struct eb_pending link; /* first: s->pending hands it back as a struct cmd_req * */
    enum req_kind kind;
    eb_redis_reply_cb *cb; /* REQ_USER */
    void *opaque;          /* REQ_USER; borrowed */
    char flags_from[32];   /* REQ_CONFIG_SET: for the log line */
    char flags_to[32];
};

struct chan_entry {
    uint16_t len; /* 0: empty slot */
    int16_t event_id;
    int32_t db;
    char name[CHAN_MAX];
};

struct eb_redis_source {
    struct event_base *base; /* borrowed */

    /* conf, strings copied */
    char *host;
    int port;
    char *username;
    char *password; /* never logged */
    bool all_databases;
    int *databases;
    size_t ndatabases;
    uint64_t events;
    bool configure_notifications;
    int connect_timeout_ms;
    int hb_interval_ms;
    int hb_timeout_ms;
    eb_log_t *log;
    eb_notification_cb *on_notification;
    eb_redis_state_cb *on_state;
    void *opaque;

    /* owned; none leaves an event registered after destroy */
    eb_redis_session_t *sess; /* connect timeout, deferred close, reconnect with backoff */
    struct event *ev_tick;    /* persistent: heartbeat + liveness checks */

    enum eb_redis_state state;
    bool started;
    bool stopped;
    bool destroying;
    int cb_depth; /* > 0 while a hiredis callback of ours runs */

    /* the current session */
    eb_redis_conn_t *sub;
    eb_redis_conn_t *cmd;
    bool sess_open;
    bool failing; /* condemned: sess will close it */
    bool sub_up;  /* TCP connected */
    bool cmd_up;
    int64_t sub_up_ns; /* when each connected: replies cannot be overdue before */
    int64_t cmd_up_ns;
    bool sub_authed; /* subscriber may subscribe */
    bool role_ok;    /* command connection talks to a master */
    bool cmd_ready;  /* role and flags checked */
    bool subs_sent;  /* the session's subscriptions were sent */
    bool hb_confirmed;
    int sub_pending;           /* subscribe confirmations still to read */
    int64_t sub_wait_since_ns; /* oldest unanswered subscriber command, 0 = none */
    int64_t last_sub_read_ns;  /* last proof the subscriber is alive */
    int64_t last_tick_ns;
    bool flags_busy;                 /* a CONFIG GET/SET round is in flight */
    bool flags_again;                /* events changed meanwhile: check once more */
    char flags_warned[32];           /* required flags we already warned about this session */
    struct eb_pending_queue pending; /* sent on cmd, reply awaited, oldest first */
    char tag_sub_auth;               /* its address tags the subscriber's AUTH reply */
    char tag_sub_name;               /* ... and its CLIENT SETNAME reply */

    /* across sessions */
    uint64_t attempts;
    int64_t start_ns;
    bool ever_subscribed;
    bool gap_open;
    int64_t gap_start_ns;
    uint64_t gap_attempts;
    char loss_reason[160];

    /* CLOCK_REALTIME - CLOCK_MONOTONIC, refreshed every tick: the hot path
     * derives wall time from its one monotonic reading instead of paying
     * for a second clock_gettime() per message (measured: the two calls
     * cost more than the rest of our per-message work). A wall-clock step
     * shows up within one heartbeat interval. */
    int64_t real_minus_mono_ns;

    char hb_channel[sizeof(HB_PREFIX) + 16];
    size_t hb_len;
    struct chan_entry cache[CHAN_CACHE_SIZE];
    unsigned cache_last, cache_next;

    eb_metrics_t *own_metrics; /* when conf->metrics was NULL */
    eb_metrics_t *metrics;     /* the registry in use: eb_redis_connected is bound to us */
    eb_series_t *m_gaps, *m_gap_seconds, *m_reconnects, *m_refusals, *m_config_changes;
};

/* ------------------------------------------------------------------------
 * Small helpers
 * --------------------------------------------------------------------- */

static void clock_resync(eb_redis_source_t *s) {
    int64_t mono = eb_mono_ns();
    s->real_minus_mono_ns = eb_real_ns() - mono;
}

#define STR_EQ(r, lit) eb_redis_reply_is((r), (lit), sizeof(lit) - 1)

static bool starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

const char *eb_redis_source_state_name(enum eb_redis_state st) {
    switch (st) {
    case EB_REDIS_CONNECTING:
        return "connecting";
    case EB_REDIS_SUBSCRIBED:
        return "subscribed";
    case EB_REDIS_WAITING:
        return "waiting";
    case EB_REDIS_STOPPED:
        return "stopped";
    }
    return "?";
}

static uint64_t valid_event_mask(void) {
    int n = eb_notify_event_count();
    return n >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << n) - 1;
}

static void set_state(eb_redis_source_t *s, enum eb_redis_state st) {
    if (s->state == st)
        return;
    enum eb_redis_state old = s->state;
    s->state = st;
    eb_log(s->log, EB_LOG_INFO, "redis source state", eb_lf_str("from", eb_redis_source_state_name(old)),
           eb_lf_str("to", eb_redis_source_state_name(st)), eb_lf_str("host", s->host),
           eb_lf_int("port", s->port));
    if (s->on_state && !s->destroying)
        s->on_state(st, s->opaque);
}

/* Condemn the session: log why (once) and let sess close it when control
 * is back in the loop. Safe from anywhere, including hiredis
 * callbacks. When the subscription was up, the gap starts at the last
 * moment the subscriber was known alive: anything published after that
 * may be lost, so that is the honest start. */
static void session_fail_hint(eb_redis_source_t *s, enum eb_log_level level, const char *msg,
                              const char *detail, const char *hint) {
    if (s->failing || !s->sess_open || s->stopped)
        return;
    s->failing = true;
    struct eb_log_field f[] = {
        eb_lf_str("host", s->host),
        eb_lf_int("port", s->port),
        eb_lf_str("detail", detail ? detail : ""),
        eb_lf_str("state", eb_redis_source_state_name(s->state)),
        eb_lf_str("hint", hint ? hint : ""),
    };
    eb_log_write(s->log, level, msg, f, hint ? 5 : 4);
    if (s->state == EB_REDIS_SUBSCRIBED) {
        s->gap_open = true;
        s->gap_start_ns = s->last_sub_read_ns;
        s->gap_attempts = 0;
        snprintf(s->loss_reason, sizeof(s->loss_reason), "%s%s%s", msg, detail ? ": " : "",
                 detail ? detail : "");
    }
    eb_redis_session_condemn(s->sess);
}

static void session_fail(eb_redis_source_t *s, enum eb_log_level level, const char *msg,
                         const char *detail) {
    session_fail_hint(s, level, msg, detail, NULL);
}

static void close_gap(eb_redis_source_t *s, int64_t now, const char *how) {
    int64_t gap_ns = now - s->gap_start_ns;
    if (gap_ns < 0)
        gap_ns = 0;
    s->gap_open = false;
    eb_metrics_inc(s->m_gaps);
    eb_metrics_add(s->m_gap_seconds, (double)gap_ns / 1e9);
    eb_log(s->log, EB_LOG_WARN, "redis subscription gap", eb_lf_int("gap_ms", gap_ns / 1000000),
           eb_lf_str("host", s->host), eb_lf_int("port", s->port), eb_lf_str("ended_by", how),
           eb_lf_str("cause", s->loss_reason), eb_lf_int("attempts", (int64_t)s->gap_attempts));
}

/* ------------------------------------------------------------------------
 * Command connection: request queue
 * --------------------------------------------------------------------- */

_Static_assert(offsetof(struct cmd_req, link) == 0, "struct cmd_req must start with its link");

/* Queue a command on the command connection. Returns the request (owned by
 * the queue) or NULL when it could not be sent (the caller decides whether
 * that condemns the session). */
static struct cmd_req *cmd_send(eb_redis_source_t *s, enum req_kind kind, int argc,
                                const char **argv, const size_t *argvlen) {
    if (!s->cmd)
        return NULL;
    struct cmd_req *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->kind = kind;
    if (eb_redis_conn_command(s->cmd, req, argc, argv, argvlen) != 0) {
        free(req);
        return NULL;
    }
    eb_redis_pending_push(&s->pending, &req->link, eb_mono_ns());
    return req;
}

/* AUTH on the command connection, spelled by the seam, tracked like any
 * other request. */
static bool cmd_auth(eb_redis_source_t *s) {
    struct cmd_req *req = calloc(1, sizeof(*req));
    if (!req)
        return false;
    req->kind = REQ_AUTH;
    if (eb_redis_conn_auth(s->cmd, req, s->username, s->password) != 0) {
        free(req);
        return false;
    }
    eb_redis_pending_push(&s->pending, &req->link, eb_mono_ns());
    return true;
}

/* Requests left after a connection was freed (hiredis answers every one
 * with NULL first, so this is defensive): finish them the same way. */
static void queue_drain(eb_redis_source_t *s) {
    struct cmd_req *req;
    while ((req = (struct cmd_req *)eb_redis_pending_pop(&s->pending))) {
        if (req->kind == REQ_USER)
            req->cb(NULL, req->opaque);
        free(req);
    }
}

/* ------------------------------------------------------------------------
 * Handshake: role, notification flags, subscriptions
 * --------------------------------------------------------------------- */

static void maybe_subscribe(eb_redis_source_t *s);
static void flags_check(eb_redis_source_t *s);

static void refuse(eb_redis_source_t *s, const char *role) {
    char msg[512];
    if (strcmp(role, "slave") == 0 || strcmp(role, "replica") == 0) {
        eb_metrics_inc(s->m_refusals);
        snprintf(msg, sizeof(msg),
                 "redis at %s:%d is a replica; replicas never publish expired events (they see "
                 "del); point redis.url at the master",
                 s->host, s->port);
    } else {
        snprintf(msg, sizeof(msg),
                 "redis at %s:%d answers ROLE with '%s', not 'master'; point redis.url at the "
                 "master",
                 s->host, s->port, role);
    }
    eb_log(s->log, EB_LOG_ERROR, msg, eb_lf_str("host", s->host), eb_lf_int("port", s->port),
           eb_lf_str("role", role));
    session_fail(s, EB_LOG_INFO, "redis connection refused by the bridge", role);
}

static void role_known(eb_redis_source_t *s, const char *role, size_t len) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1), role);
    if (strcmp(buf, "master") != 0) {
        refuse(s, buf);
        return;
    }
    s->role_ok = true;
    flags_check(s);
}

static void on_role(eb_redis_source_t *s, const redisReply *r) {
    if (eb_redis_reply_is_error(r)) {
        if (starts_with(eb_redis_reply_text(r), "NOAUTH")) {
            session_fail(s, EB_LOG_ERROR,
                         "redis requires authentication; set redis.password (and a user)",
                         eb_redis_reply_text(r));
            return;
        }
        /* ROLE unknown (old server) or forbidden by an ACL: INFO works on
         * both and says the same. */
        eb_log(s->log, EB_LOG_DEBUG, "redis ROLE refused; reading the role from INFO replication",
               eb_lf_str("detail", eb_redis_reply_text(r)), eb_lf_str("host", s->host),
               eb_lf_int("port", s->port));
        const char *argv[] = {"INFO", "replication"};
        if (!cmd_send(s, REQ_INFO, 2, argv, NULL))
            session_fail(s, EB_LOG_WARN, "redis command could not be queued", "INFO");
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        session_fail(s, EB_LOG_ERROR, "redis answered ROLE unexpectedly", NULL);
        return;
    }
    role_known(s, r->element[0]->str, r->element[0]->len);
}

static void on_info(eb_redis_source_t *s, const redisReply *r) {
    const char *line = NULL;
    if (!eb_redis_reply_is_error(r) && r->type == REDIS_REPLY_STRING)
        line = strstr(eb_redis_reply_text(r), "role:");
    if (!line) {
        /* Managed Redis forbidding both ROLE and INFO: assume a master
         * rather than never working; say so once per connect. */
        eb_log(s->log, EB_LOG_WARN, "redis role unknown (ROLE and INFO refused); assuming a master",
               eb_lf_str("host", s->host), eb_lf_int("port", s->port),
               eb_lf_str("detail", eb_redis_reply_is_error(r) ? eb_redis_reply_text(r) : "no role: line"));
        role_known(s, "master", 6);
        return;
    }
    line += 5;
    role_known(s, line, strcspn(line, "\r\n"));
}

/* Once per session per set of required flags: the operator needs to know
 * exactly which flags to add where the bridge cannot. */
static void warn_flags(eb_redis_source_t *s, const char *required, const char *current,
                       const char *missing, const char *reason) {
    if (strcmp(s->flags_warned, required) == 0)
        return;
    snprintf(s->flags_warned, sizeof(s->flags_warned), "%s", required);
    char want[32];
    if (current)
        eb_notify_flags_merge(current, required, want, sizeof(want));
    eb_log(s->log, EB_LOG_WARN,
           current ? "redis notify-keyspace-events lacks flags the bridge needs; set them on the "
                     "server (CONFIG SET notify-keyspace-events or redis.conf)"
                   : "cannot read notify-keyspace-events; make sure the server enables these "
                     "flags (CONFIG SET notify-keyspace-events or redis.conf)",
           eb_lf_str("missing", missing), eb_lf_str("required", required),
           eb_lf_str("current", current ? current : "unknown"),
           eb_lf_str("set_to", current ? want : required), eb_lf_str("reason", reason),
           eb_lf_str("host", s->host), eb_lf_int("port", s->port));
}

static void flags_done(eb_redis_source_t *s) {
    s->flags_busy = false;
    if (s->flags_again) {
        s->flags_again = false;
        flags_check(s);
        return;
    }
    if (!s->cmd_ready) {
        s->cmd_ready = true;
        maybe_subscribe(s);
    }
}

/* Read notify-keyspace-events (again after every reconnect: a restarted
 * Redis forgot any CONFIG SET) and add what the current events need. */
static void flags_check(eb_redis_source_t *s) {
    if (s->flags_busy) {
        s->flags_again = true;
        return;
    }
    s->flags_busy = true;
    const char *argv[] = {"CONFIG", "GET", "notify-keyspace-events"};
    if (!cmd_send(s, REQ_CONFIG_GET, 3, argv, NULL)) {
        s->flags_busy = false;
        session_fail(s, EB_LOG_WARN, "redis command could not be queued", "CONFIG GET");
    }
}

static void on_config_get(eb_redis_source_t *s, const redisReply *r) {
    char required[32], missing[32];
    eb_notify_required_flags(s->events, required, sizeof(required));
    if (eb_redis_reply_is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        warn_flags(s, required, NULL, required,
                   eb_redis_reply_is_error(r) ? eb_redis_reply_text(r) : "CONFIG GET returned nothing");
        flags_done(s);
        return;
    }
    const char *current = r->element[1]->str;
    if (!eb_notify_flags_missing(current, required, missing, sizeof(missing))) {
        flags_done(s);
        return;
    }
    if (!s->configure_notifications) {
        warn_flags(s, required, current, missing, "redis.configure_notifications is false");
        flags_done(s);
        return;
    }
    char merged[32];
    eb_notify_flags_merge(current, required, merged, sizeof(merged));
    const char *argv[] = {"CONFIG", "SET", "notify-keyspace-events", merged};
    struct cmd_req *req = cmd_send(s, REQ_CONFIG_SET, 4, argv, NULL);
    if (!req) {
        session_fail(s, EB_LOG_WARN, "redis command could not be queued", "CONFIG SET");
        return;
    }
    snprintf(req->flags_from, sizeof(req->flags_from), "%s", current);
    snprintf(req->flags_to, sizeof(req->flags_to), "%s", merged);
}

static void on_config_set(eb_redis_source_t *s, const struct cmd_req *req, const redisReply *r) {
    char required[32], missing[32];
    eb_notify_required_flags(s->events, required, sizeof(required));
    eb_notify_flags_missing(req->flags_from, required, missing, sizeof(missing));
    if (eb_redis_reply_is_error(r)) {
        warn_flags(s, required, req->flags_from, missing, eb_redis_reply_text(r));
    } else {
        eb_metrics_inc(s->m_config_changes);
        eb_log(s->log, EB_LOG_INFO, "redis notify-keyspace-events changed",
               eb_lf_str("from", req->flags_from), eb_lf_str("to", req->flags_to),
               eb_lf_str("added", missing), eb_lf_str("host", s->host), eb_lf_int("port", s->port));
    }
    flags_done(s);
}

/* Channel (or pattern) name for db/event into buf; db < 0 means "*". */
static size_t channel_name(char *buf, int db, int event_id) {
    int n = db < 0
                ? snprintf(buf, CHAN_BUF, "__keyevent@*__:%s", eb_notify_event_name(event_id))
                : snprintf(buf, CHAN_BUF, "__keyevent@%d__:%s", db, eb_notify_event_name(event_id));
    return n < 0 ? 0 : (size_t)n;
}

/* Send one (P)SUBSCRIBE or (P)UNSUBSCRIBE for the events in mask (plus the
 * heartbeat channel when with_hb). Returns the number of channels named,
 * or a negative EB_E* code. */
static int sub_command(eb_redis_source_t *s, bool subscribe, uint64_t mask, bool with_hb) {
    size_t per_event = s->all_databases ? 1 : s->ndatabases;
    bool hb_here = with_hb && !s->all_databases; /* patterns and a channel need two commands */
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    eb_redis_argv_add_str(&a, s->all_databases ? (subscribe ? "PSUBSCRIBE" : "PUNSUBSCRIBE")
                                               : (subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE"));
    for (int e = 0; e < eb_notify_event_count(); e++) {
        if (!((mask >> e) & 1))
            continue;
        for (size_t d = 0; d < per_event; d++) {
            char buf[CHAN_BUF];
            size_t len = channel_name(buf, s->all_databases ? -1 : s->databases[d], e);
            eb_redis_argv_add_copy(&a, buf, len);
        }
    }
    if (hb_here)
        eb_redis_argv_add_bytes(&a, s->hb_channel, s->hb_len);
    int n = a.argc - 1, rc = 0;
    if (!eb_redis_argv_ok(&a))
        rc = EB_ENOMEM;
    else if (n > 0)
        rc = eb_redis_conn_command(s->sub, NULL, a.argc, a.argv, a.argvlen);
    eb_redis_argv_free(&a);
    return rc < 0 ? rc : n;
}

static void maybe_subscribe(eb_redis_source_t *s) {
    if (s->subs_sent || !s->cmd_ready || !s->sub_authed || s->failing)
        return;
    int n = sub_command(s, true, s->events, true);
    if (n >= 0 && s->all_databases) {
        const char *argv[] = {"SUBSCRIBE", s->hb_channel};
        n = eb_redis_conn_command(s->sub, NULL, 2, argv, NULL) == 0 ? n + 1 : EB_ESTATE;
    }
    if (n < 0) {
        session_fail(s, EB_LOG_WARN, "redis subscribe could not be sent", eb_error_str(n));
        return;
    }
    s->subs_sent = true;
    s->sub_pending += n;
    s->sub_wait_since_ns = eb_mono_ns();
}

static void on_subscribed(eb_redis_source_t *s) {
    int64_t now = eb_mono_ns();
    s->last_sub_read_ns = now;
    clock_resync(s);
    eb_redis_session_established(s->sess);
    if (s->gap_open) {
        close_gap(s, now, "resubscribed");
    } else if (!s->ever_subscribed) {
        /* Startup is not a gap: nothing was subscribed before. */
        eb_log(s->log, EB_LOG_INFO, "redis subscribed", eb_lf_str("host", s->host),
               eb_lf_int("port", s->port), eb_lf_int("startup_ms", (now - s->start_ns) / 1000000),
               eb_lf_int("attempts", (int64_t)s->attempts),
               eb_lf_bool("all_databases", s->all_databases));
    }
    s->ever_subscribed = true;
    set_state(s, EB_REDIS_SUBSCRIBED);
}

/* ------------------------------------------------------------------------
 * Subscriber: the hot path
 * --------------------------------------------------------------------- */

/* "__keyevent@<db>__:<event>" -> event id (db in *db), or EV_UNKNOWN. */
static int parse_channel(const char *p, size_t len, int *db) {
    static const char pre[] = "__keyevent@";
    const size_t pl = sizeof(pre) - 1;
    if (len < pl + 1 + 3 + 1 || memcmp(p, pre, pl) != 0)
        return EV_UNKNOWN;
    size_t i = pl;
    int32_t v = 0;
    while (i < len && i - pl < 9 && p[i] >= '0' && p[i] <= '9')
        v = v * 10 + (p[i++] - '0');
    if (i == pl || len - i < 4 || memcmp(p + i, "__:", 3) != 0)
        return EV_UNKNOWN;
    i += 3;
    *db = v;
    int id = eb_notify_event_id(p + i, len - i);
    return id < 0 ? EV_UNKNOWN : id;
}

/* Channel -> (db, event id) through the cache: at hundreds of thousands
 * of messages a second, nearly every message names the channel of the one
 * before it, so the first comparison usually hits. */
static int resolve_channel(eb_redis_source_t *s, const char *p, size_t len, int *db) {
    struct chan_entry *e = &s->cache[s->cache_last];
    if (e->len == len && len && memcmp(e->name, p, len) == 0) {
        *db = e->db;
        return e->event_id;
    }
    for (unsigned i = 0; i < CHAN_CACHE_SIZE; i++) {
        e = &s->cache[i];
        if (e->len == len && len && memcmp(e->name, p, len) == 0) {
            s->cache_last = i;
            *db = e->db;
            return e->event_id;
        }
    }
    int d = 0, id;
    if (len == s->hb_len && memcmp(p, s->hb_channel, len) == 0)
        id = EV_HEARTBEAT;
    else
        id = parse_channel(p, len, &d);
    if (len && len < CHAN_MAX) {
        unsigned slot = s->cache_next++ % CHAN_CACHE_SIZE;
        e = &s->cache[slot];
        e->len = (uint16_t)len;
        memcpy(e->name, p, len);
        e->db = d;
        e->event_id = (int16_t)id;
        s->cache_last = slot;
    }
    *db = d;
    return id;
}

/* One message/pmessage: no allocation, no logging. */
static void deliver(eb_redis_source_t *s, const redisReply *ch, const redisReply *payload) {
    if (s->stopped || ch->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING)
        return;
    int64_t now = eb_mono_ns();
    /* Any message proves the subscriber alive: under a flood the heartbeat
     * queues behind thousands of events and must not look missed. */
    s->last_sub_read_ns = now;
    int db;
    int id = resolve_channel(s, ch->str, ch->len, &db);
    if (id < 0 || !((s->events >> id) & 1))
        return; /* heartbeat, foreign channel, or an event just dropped */
    struct eb_notification n = {
        .event = eb_notify_event_name(id),
        .event_id = id,
        .db = db,
        .key = payload->str,
        .key_len = payload->len,
        .recv_mono_ns = now,
        .recv_real_us = (now + s->real_minus_mono_ns) / 1000,
    };
    s->on_notification(&n, s->opaque);
}

static void on_sub_control(eb_redis_source_t *s, const redisReply *r) {
    const redisReply *t = r->element[0];
    bool sub = STR_EQ(t, "subscribe") || STR_EQ(t, "psubscribe");
    if (!sub)
        return; /* (p)unsubscribe confirmations need nothing */
    if (r->element[1]->type == REDIS_REPLY_STRING && r->element[1]->len == s->hb_len &&
        memcmp(r->element[1]->str, s->hb_channel, s->hb_len) == 0)
        s->hb_confirmed = true;
    if (s->sub_pending > 0 && --s->sub_pending == 0) {
        s->sub_wait_since_ns = 0;
        if (s->state != EB_REDIS_SUBSCRIBED && !s->failing && !s->stopped)
            on_subscribed(s);
    }
}

/* @locality loop thread, inside hiredis (subscriber connection). */
static void sub_on_reply(eb_redis_conn_t *c, const redisReply *r, void *privdata, void *opaque) {
    eb_redis_source_t *s = opaque;
    if (!r)
        return; /* the connection is going away; its owner knows */
    s->cb_depth++;
    if (privdata == &s->tag_sub_auth) {
        if (eb_redis_reply_is_error(r)) {
            session_fail(s, EB_LOG_ERROR, "redis AUTH failed (subscriber)", eb_redis_reply_text(r));
        } else {
            s->sub_authed = true;
            s->sub_wait_since_ns = 0;
            maybe_subscribe(s);
        }
    } else if (privdata == &s->tag_sub_name) {
        /* A name is a courtesy to operators; an ACL may forbid it. */
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
        const redisReply *t = r->element[0];
        if (t->type == REDIS_REPLY_STRING && t->len == 7 && memcmp(t->str, "message", 7) == 0)
            deliver(s, r->element[1], r->element[2]);
        else if (r->elements >= 4 && STR_EQ(t, "pmessage"))
            deliver(s, r->element[2], r->element[3]);
        else if (t->type == REDIS_REPLY_STRING)
            on_sub_control(s, r);
    }
    s->cb_depth--;
}

/* ------------------------------------------------------------------------
 * Connection events
 * --------------------------------------------------------------------- */

static void on_conn_connect(eb_redis_source_t *s, bool is_sub, bool ok, const char *err) {
    s->cb_depth++;
    if (!ok) {
        session_fail(s, EB_LOG_WARN,
                     is_sub ? "redis connect failed (subscriber)" : "redis connect failed", err);
    } else {
        if (is_sub) {
            s->sub_up = true;
            s->sub_up_ns = eb_mono_ns();
        } else {
            s->cmd_up = true;
            s->cmd_up_ns = eb_mono_ns();
        }
        if (s->sub_up && s->cmd_up)
            eb_redis_session_connected(s->sess);
    }
    s->cb_depth--;
}

/* @locality loop thread, inside hiredis. */
static void sub_on_connect(eb_redis_conn_t *c, bool ok, const char *err, void *opaque) {
    on_conn_connect(opaque, true, ok, err);
}
static void cmd_on_connect(eb_redis_conn_t *c, bool ok, const char *err, void *opaque) {
    on_conn_connect(opaque, false, ok, err);
}

/* @locality loop thread, inside hiredis. */
static void sub_on_disconnect(eb_redis_conn_t *c, const char *err, void *opaque) {
    eb_redis_source_t *s = opaque;
    s->cb_depth++;
    if (starts_with(err, "NOPERM"))
        /* hiredis 0.14 turns an error reply on a subscribed connection into
         * a disconnect: an ACL user without channel permissions. */
        session_fail_hint(s, EB_LOG_ERROR, "redis refused the subscription", err,
                          "the ACL user needs channel access: &__keyevent@* "
                          "&__expiry_bridge:hb:* (or &*)");
    else
        session_fail_hint(s, EB_LOG_WARN, "redis connection lost (subscriber)", err,
                          "when redis itself stayed up it dropped the subscriber: "
                          "client-output-buffer-limit pubsub (the bridge read too slowly) or "
                          "CLIENT KILL");
    s->cb_depth--;
}
static void cmd_on_disconnect(eb_redis_conn_t *c, const char *err, void *opaque) {
    eb_redis_source_t *s = opaque;
    s->cb_depth++;
    session_fail(s, EB_LOG_WARN, "redis connection lost (command)", err);
    s->cb_depth--;
}

static void on_internal_reply(eb_redis_source_t *s, const struct cmd_req *req,
                              const redisReply *r) {
    switch (req->kind) {
    case REQ_AUTH:
        if (eb_redis_reply_is_error(r))
            session_fail(s, EB_LOG_ERROR, "redis AUTH failed", eb_redis_reply_text(r));
        break;
    case REQ_ROLE:
        on_role(s, r);
        break;
    case REQ_INFO:
        on_info(s, r);
        break;
    case REQ_CONFIG_GET:
        on_config_get(s, r);
        break;
    case REQ_CONFIG_SET:
        on_config_set(s, req, r);
        break;
    case REQ_PUBLISH:
        /* The server counts our subscriber as a receiver; none means it
         * dropped the subscriber without us noticing yet. */
        if (eb_redis_reply_is_error(r))
            session_fail(s, EB_LOG_WARN, "redis heartbeat refused", eb_redis_reply_text(r));
        else if (r->type == REDIS_REPLY_INTEGER && r->integer == 0 && s->hb_confirmed)
            session_fail(s, EB_LOG_WARN, "redis connection dead",
                         "heartbeat reached no subscriber");
        break;
    case REQ_SETNAME:
    case REQ_USER:
        break;
    }
}

/* @locality loop thread, inside hiredis (command connection). */
static void cmd_on_reply(eb_redis_conn_t *c, const redisReply *r, void *privdata, void *opaque) {
    eb_redis_source_t *s = opaque;
    struct cmd_req *req = privdata;
    eb_redis_pending_remove(&s->pending, &req->link);
    s->cb_depth++;
    if (req->kind == REQ_USER)
        req->cb(r, req->opaque);
    else if (r && !s->failing && !s->stopped)
        on_internal_reply(s, req, r);
    s->cb_depth--;
    free(req);
}

static const struct eb_redis_conn_handlers sub_handlers = {
    sub_on_connect,
    sub_on_disconnect,
    sub_on_reply,
};
static const struct eb_redis_conn_handlers cmd_handlers = {
    cmd_on_connect,
    cmd_on_disconnect,
    cmd_on_reply,
};

/* ------------------------------------------------------------------------
 * Sessions
 * --------------------------------------------------------------------- */

/* Close both connections. Never called from inside a hiredis callback
 * (cb_depth == 0): pending commands see NULL replies from here. */
static void session_close(eb_redis_source_t *s) {
    eb_redis_conn_t *sub = s->sub, *cmd = s->cmd;
    event_del(s->ev_tick);
    s->sub = s->cmd = NULL;
    s->sess_open = s->failing = false;
    s->sub_up = s->cmd_up = s->sub_authed = s->role_ok = s->cmd_ready = false;
    s->sub_up_ns = s->cmd_up_ns = 0;
    s->subs_sent = s->hb_confirmed = s->flags_busy = s->flags_again = false;
    s->sub_pending = 0;
    s->sub_wait_since_ns = 0;
    s->flags_warned[0] = '\0';
    /* The subscriber first: no notification once we decided to close. */
    eb_redis_conn_destroy(sub);
    eb_redis_conn_destroy(cmd);
    queue_drain(s);
}

static void session_open(eb_redis_source_t *s) {
    char err[256];
    s->attempts++;
    if (s->attempts > 1)
        eb_metrics_inc(s->m_reconnects);
    if (s->gap_open)
        s->gap_attempts++;
    s->sess_open = true;
    s->last_tick_ns = 0;
    clock_resync(s);
    set_state(s, EB_REDIS_CONNECTING);
    if (s->stopped || !s->sess_open)
        return; /* on_state stopped us */

    eb_redis_session_opening(s->sess, s->connect_timeout_ms);
    struct timeval tick = {s->hb_interval_ms / 1000, (s->hb_interval_ms % 1000) * 1000};
    event_add(s->ev_tick, &tick);

    s->sub = eb_redis_conn_new(s->base, s->host, s->port, &sub_handlers, s, err, sizeof(err));
    if (!s->sub)
        goto err_fail;
    s->cmd = eb_redis_conn_new(s->base, s->host, s->port, &cmd_handlers, s, err, sizeof(err));
    if (!s->cmd)
        goto err_fail;

    snprintf(err, sizeof(err), "%s", "AUTH could not be queued");
    if (s->password) {
        if (eb_redis_conn_auth(s->sub, &s->tag_sub_auth, s->username, s->password) != 0)
            goto err_fail;
        s->sub_wait_since_ns = eb_mono_ns();
        if (!cmd_auth(s))
            goto err_fail;
    } else {
        s->sub_authed = true;
    }
    /* Named so that CLIENT LIST shows which connections are the bridge's
     * (and CLIENT KILL can aim at one); replies are ignored. */
    const char *sub_name[] = {"CLIENT", "SETNAME", "expiry-bridge:sub"};
    const char *cmd_name[] = {"CLIENT", "SETNAME", "expiry-bridge:cmd"};
    (void)eb_redis_conn_command(s->sub, &s->tag_sub_name, 3, sub_name, NULL);
    (void)cmd_send(s, REQ_SETNAME, 3, cmd_name, NULL);
    /* Pipelined behind AUTH: if AUTH fails the session is condemned before
     * this reply is looked at. */
    const char *role[] = {"ROLE"};
    snprintf(err, sizeof(err), "%s", "ROLE could not be queued");
    if (!cmd_send(s, REQ_ROLE, 1, role, NULL))
        goto err_fail;
    return;

err_fail:
    session_fail(s, EB_LOG_WARN, "redis connect failed", err);
}

/* ------------------------------------------------------------------------
 * Session lifecycle (redis_session.h): what is the source's own in it
 * --------------------------------------------------------------------- */

/* @locality loop thread (libevent timers of sess, outside hiredis). */
static void sess_open(void *opaque) {
    session_open(opaque);
}

static void sess_close(void *opaque) {
    session_close(opaque);
}

static void sess_timed_out(const char *detail, void *opaque) {
    session_fail(opaque, EB_LOG_WARN, "redis connect timed out", detail);
}

static void sess_retrying(uint32_t delay_ms, void *opaque) {
    eb_redis_source_t *s = opaque;
    eb_log(s->log, EB_LOG_INFO, "redis reconnect scheduled", eb_lf_int("delay_ms", delay_ms),
           eb_lf_str("host", s->host), eb_lf_int("port", s->port));
    set_state(s, EB_REDIS_WAITING);
}

static const struct eb_redis_session_handlers sess_handlers = {
    .open = sess_open,
    .close = sess_close,
    .timed_out = sess_timed_out,
    .retrying = sess_retrying,
};

/* ------------------------------------------------------------------------
 * Heartbeat and liveness
 * --------------------------------------------------------------------- */

static void publish_heartbeat(eb_redis_source_t *s) {
    const char *argv[] = {"PUBLISH", s->hb_channel, "1"};
    if (!cmd_send(s, REQ_PUBLISH, 3, argv, NULL))
        session_fail(s, EB_LOG_WARN, "redis command could not be queued", "PUBLISH");
}

/* Every heartbeat interval: judge liveness, then send the next heartbeat.
 * A tick that comes much later than scheduled means this loop was stalled
 * (a slow callback, a paused process): replies may be sitting unread in
 * the socket, so it judges nothing and gives them one interval.
 * @locality loop thread (libevent timer). */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    eb_redis_source_t *s = arg;
    int64_t now = eb_mono_ns();
    int64_t interval = (int64_t)s->hb_interval_ms * 1000000;
    bool stalled = s->last_tick_ns && now - s->last_tick_ns > 2 * interval;
    s->last_tick_ns = now;
    clock_resync(s);
    if (s->failing || s->stopped || !s->sess_open)
        return;
    int64_t limit = (int64_t)s->hb_timeout_ms * 1000000;
    char detail[96];
    /* Before a connection is up its queued commands wait for the connect,
     * which the connect timeout judges; after, they age from the later of
     * sending and connecting. */
    const struct cmd_req *late =
        s->cmd_up
            ? (const struct cmd_req *)eb_redis_pending_overdue(&s->pending, now, s->cmd_up_ns, limit)
            : NULL;
    int64_t sub_since = s->sub_wait_since_ns;
    if (sub_since && sub_since < s->sub_up_ns)
        sub_since = s->sub_up_ns;
    if (!stalled && late) {
        snprintf(detail, sizeof(detail), "%s reply overdue by more than %d ms",
                 req_names[late->kind], s->hb_timeout_ms);
        session_fail(s, EB_LOG_WARN, "redis connection dead", detail);
    } else if (!stalled && s->sub_up && sub_since && now - sub_since > limit) {
        snprintf(detail, sizeof(detail), "subscriber reply overdue by more than %d ms",
                 s->hb_timeout_ms);
        session_fail(s, EB_LOG_WARN, "redis connection dead", detail);
    } else if (!stalled && s->state == EB_REDIS_SUBSCRIBED && now - s->last_sub_read_ns > limit) {
        snprintf(detail, sizeof(detail), "no heartbeat read for more than %d ms", s->hb_timeout_ms);
        session_fail(s, EB_LOG_WARN, "redis connection dead", detail);
    } else if (s->hb_confirmed && s->role_ok) {
        publish_heartbeat(s);
    }
}

/* ------------------------------------------------------------------------
 * Public API
 * --------------------------------------------------------------------- */

static void make_hb_channel(eb_redis_source_t *s) {
    uint64_t id = 0;
    if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id))
        id = (uint64_t)eb_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    int n = snprintf(s->hb_channel, sizeof(s->hb_channel), HB_PREFIX "%016" PRIx64, id);
    s->hb_len = (size_t)n;
}

static int conf_ms(int v, int def) {
    return v > 0 ? v : def;
}

static double gauge_connected(void *opaque) {
    const eb_redis_source_t *s = opaque;
    return s->state == EB_REDIS_SUBSCRIBED && !s->failing ? 1 : 0;
}

static bool register_metrics(eb_redis_source_t *s, eb_metrics_t *m, char *errstr,
                             size_t errstr_size) {
    static const struct {
        enum eb_metric_type type;
        const char *name, *help;
        size_t off;
    } defs[] = {
        {EB_METRIC_COUNTER, "eb_redis_gaps_total",
         "Times the keyevent subscription was lost after being established, counted when it "
         "is restored (or the source stops first)",
         offsetof(struct eb_redis_source, m_gaps)},
        {EB_METRIC_COUNTER, "eb_redis_gap_seconds_total",
         "Seconds without a keyevent subscription, from the last sign of life of the lost one "
         "to the restored one",
         offsetof(struct eb_redis_source, m_gap_seconds)},
        {EB_METRIC_COUNTER, "eb_redis_reconnects_total",
         "Redis connection attempts after the first one",
         offsetof(struct eb_redis_source, m_reconnects)},
        {EB_METRIC_COUNTER, "eb_redis_replica_refusals_total",
         "Connections refused because redis.url points at a replica",
         offsetof(struct eb_redis_source, m_refusals)},
        {EB_METRIC_COUNTER, "eb_redis_notify_config_changes_total",
         "CONFIG SET notify-keyspace-events issued to add flags the bridge needs",
         offsetof(struct eb_redis_source, m_config_changes)},
    };
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        eb_metric_t *f = eb_metrics_register(m, defs[i].type, defs[i].name, defs[i].help, NULL, NULL, 0);
        if (!f) {
            eb_error_set(errstr, errstr_size, EB_EINVAL,
                      "cannot register metric %s (out of memory, or registered already with "
                      "another type)",
                      defs[i].name);
            return false;
        }
        *(eb_series_t **)((char *)s + defs[i].off) = eb_metrics_series0(f);
    }
    /* A callback, not a series: when a reload replaces the source, the
     * newest one answers, and the old one's stop/destroy cannot overwrite
     * the new one's state with a 0. */
    if (!eb_metrics_register_gauge_fn(m, "eb_redis_connected",
                                 "1 while every keyevent channel is subscribed, else 0 (during a "
                                 "reload's reconnect: the new connection)",
                                 gauge_connected, s)) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "cannot register metric eb_redis_connected");
        return false;
    }
    s->metrics = m;
    return true;
}

static char *dup_or_null(const char *v, bool *oom) {
    if (!v)
        return NULL;
    char *d = strdup(v);
    if (!d)
        *oom = true;
    return d;
}

static void free_fields(eb_redis_source_t *s) {
    eb_redis_session_destroy(s->sess);
    if (s->ev_tick)
        event_free(s->ev_tick);
    if (s->metrics)
        eb_metrics_unbind(s->metrics, s);
    eb_metrics_destroy(s->own_metrics);
    free(s->host);
    free(s->username);
    if (s->password) {
        /* A freed secret should not linger in the heap. */
        memset(s->password, 0, strlen(s->password));
        free(s->password);
    }
    free(s->databases);
    free(s);
}

eb_redis_source_t *eb_redis_source_new(struct event_base *base,
                                       const struct eb_redis_source_conf *conf, char *errstr,
                                       size_t errstr_size) {
    if (!base || !conf || !conf->host || !*conf->host || !conf->on_notification) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                  "redis source needs an event base, a host and a notification callback");
        return NULL;
    }
    if (conf->port <= 0 || conf->port > 65535) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "redis port %d is out of range", conf->port);
        return NULL;
    }
    if (!conf->all_databases && (conf->ndatabases == 0 || !conf->databases)) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "redis source needs databases (or all)");
        return NULL;
    }
    for (size_t i = 0; !conf->all_databases && i < conf->ndatabases; i++) {
        if (conf->databases[i] < 0) {
            eb_error_set(errstr, errstr_size, EB_EINVAL, "redis database %d is negative",
                      conf->databases[i]);
            return NULL;
        }
    }
    if (conf->events & ~valid_event_mask()) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "unknown event id in mask 0x%" PRIx64,
                  conf->events);
        return NULL;
    }
    if (conf->connect_timeout_ms < 0 || conf->heartbeat_interval_ms < 0 ||
        conf->heartbeat_timeout_ms < 0 || conf->reconnect_min_ms < 0 ||
        conf->reconnect_max_ms < 0) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "redis timings must not be negative");
        return NULL;
    }

    eb_redis_source_t *s = calloc(1, sizeof(*s));
    if (!s) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    bool oom = false;
    s->base = base;
    s->host = dup_or_null(conf->host, &oom);
    s->port = conf->port;
    s->username = conf->username && *conf->username ? dup_or_null(conf->username, &oom) : NULL;
    s->password = conf->password && *conf->password ? dup_or_null(conf->password, &oom) : NULL;
    s->all_databases = conf->all_databases;
    if (!s->all_databases) {
        s->databases = malloc(conf->ndatabases * sizeof(int));
        if (s->databases)
            memcpy(s->databases, conf->databases, conf->ndatabases * sizeof(int));
        else
            oom = true;
        s->ndatabases = conf->ndatabases;
    }
    s->events = conf->events;
    s->configure_notifications = conf->configure_notifications;
    s->connect_timeout_ms = conf_ms(conf->connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT_MS);
    s->hb_interval_ms = conf_ms(conf->heartbeat_interval_ms, DEFAULT_HEARTBEAT_INTERVAL_MS);
    s->hb_timeout_ms = conf_ms(conf->heartbeat_timeout_ms, DEFAULT_HEARTBEAT_TIMEOUT_MS);
    s->log = conf->log;
    s->on_notification = conf->on_notification;
    s->on_state = conf->on_state;
    s->opaque = conf->opaque;
    s->state = EB_REDIS_STOPPED;
    make_hb_channel(s);
    if (oom) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free_fields;
    }

    s->sess = eb_redis_session_new(
        base, (uint32_t)conf_ms(conf->reconnect_min_ms, DEFAULT_RECONNECT_MIN_MS),
        (uint32_t)conf_ms(conf->reconnect_max_ms, DEFAULT_RECONNECT_MAX_MS), &sess_handlers, s,
        errstr, errstr_size);
    if (!s->sess)
        goto err_free_fields;
    s->ev_tick = event_new(base, -1, EV_PERSIST, on_tick, s);
    if (!s->ev_tick) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free_fields;
    }

    eb_metrics_t *m = conf->metrics;
    if (!m) {
        m = s->own_metrics = eb_metrics_new();
        if (!m) {
            eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
            goto err_free_fields;
        }
    }
    if (!register_metrics(s, m, errstr, errstr_size))
        goto err_free_fields;
    return s;

err_free_fields:
    free_fields(s);
    return NULL;
}

int eb_redis_source_start(eb_redis_source_t *s) {
    if (!s || s->started)
        return EB_ESTATE;
    s->started = true;
    s->start_ns = eb_mono_ns();
    eb_log(s->log, EB_LOG_INFO, "redis source starting", eb_lf_str("host", s->host),
           eb_lf_int("port", s->port), eb_lf_bool("auth", s->password != NULL),
           eb_lf_str("user", s->username ? s->username : ""),
           eb_lf_bool("all_databases", s->all_databases));
    session_open(s);
    return 0;
}

void eb_redis_source_stop(eb_redis_source_t *s) {
    if (!s || s->stopped)
        return;
    s->stopped = true;
    eb_redis_session_stop(s->sess);
    event_del(s->ev_tick);
    if (s->gap_open) {
        /* Events were missed and no later subscription will say so. */
        close_gap(s, eb_mono_ns(), "stopped");
    }
    if (s->cb_depth > 0)
        eb_redis_session_condemn(s->sess); /* inside hiredis: close once control returns */
    else
        session_close(s);
    set_state(s, EB_REDIS_STOPPED);
}

int eb_redis_source_set_events(eb_redis_source_t *s, uint64_t events) {
    if (events & ~valid_event_mask())
        return EB_EINVAL;
    uint64_t old = s->events;
    if (events == old)
        return 0;
    s->events = events;
    if (s->subs_sent && !s->failing) {
        uint64_t added = events & ~old, dropped = old & ~events;
        /* Subscribe first: on one connection Redis runs them in order, so
         * nothing kept is ever unsubscribed and nothing new is missed. */
        int n = added ? sub_command(s, true, added, false) : 0;
        if (n == EB_ENOMEM) {
            s->events = old;
            return EB_ENOMEM;
        }
        if (n > 0) {
            if (s->sub_pending == 0)
                s->sub_wait_since_ns = eb_mono_ns();
            s->sub_pending += n;
        }
        /* A failed UNSUBSCRIBE only costs filtered messages: deliver()
         * drops events outside the mask. */
        if (dropped)
            (void)sub_command(s, false, dropped, false);
    }
    if (s->role_ok && !s->failing)
        flags_check(s);
    return 0;
}

enum eb_redis_state eb_redis_source_state(const eb_redis_source_t *s) {
    return s->state;
}

int eb_redis_source_command(eb_redis_source_t *s, eb_redis_reply_cb *cb, void *opaque, int argc,
                            const char **argv, const size_t *argvlen) {
    if (!s || !cb || argc < 1 || !argv)
        return EB_EINVAL;
    if (!s->role_ok || s->failing || s->stopped || !eb_redis_conn_alive(s->cmd))
        return EB_ESTATE;
    struct cmd_req *req = cmd_send(s, REQ_USER, argc, argv, argvlen);
    if (!req)
        return eb_redis_conn_alive(s->cmd) ? EB_ENOMEM : EB_ESTATE;
    req->cb = cb;
    req->opaque = opaque;
    return 0;
}

void eb_redis_source_destroy(eb_redis_source_t *s) {
    if (!s)
        return;
    if (s->cb_depth > 0) {
        fprintf(stderr, "eb_redis_source_destroy() called from inside its own callback\n");
        abort();
    }
    s->destroying = true;
    s->stopped = true;
    session_close(s);
    free_fields(s);
}
