/* redis_source.c -- keyevent notifications from one Redis master: two
 * clients (redis_client.h), the notification flags, the subscriptions,
 * heartbeat liveness, gap accounting, and the hot path from a pub/sub
 * message to a struct eb_notification (contract in redis_source.h).
 *
 * The two connections are one session: the command client (ROLE must say
 * master) reads notify-keyspace-events and adds what is missing; then the
 * subscriber client (P)SUBSCRIBEs every channel and the heartbeat channel;
 * every confirmation read is EB_REDIS_SUBSCRIBED. When either connection
 * fails, the other is reset too, so both come back together and the
 * subscription is rebuilt whole (each client reconnects with its own
 * backoff; connecting, timeouts and closing are theirs).
 *
 * Ownership: the source owns both clients, their shared resolver, its
 * heartbeat timer and copies of every conf string. conf->log and
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
#include "redis/handover.h"
#include "redis/redis_argv.h"
#include "redis/redis_client.h"
#include "redis/redis_reply.h"
#include "redis/redis_source.h"

/* ------------------------------------------------------------------------
 * Tunables
 * --------------------------------------------------------------------- */

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
#define EV_HANDOVER  (-3) /* the coordination's handover channel (handover.h) */

#define HB_PREFIX "__expiry_bridge:hb:"

/* What a lost subscriber usually means when Redis itself stayed up. */
#define HINT_SUB_LOST                                                                              \
    "when redis itself stayed up it dropped the subscriber: client-output-buffer-limit pubsub "   \
    "(the bridge read too slowly) or CLIENT KILL"
#define HINT_NOPERM                                                                                \
    "the ACL user needs channel access: &__keyevent@* &__expiry_bridge:hb:* (or &*)"

/* ------------------------------------------------------------------------
 * Types
 * --------------------------------------------------------------------- */

struct chan_entry {
    uint16_t len; /* 0: empty slot */
    int16_t event_id;
    int32_t db;
    char name[CHAN_MAX];
};

/* A CONFIG SET in flight, for its log line. */
struct flags_set {
    eb_redis_source_t *s;
    char from[32];
    char to[32];
};

struct eb_redis_source {
    struct event_base *base; /* borrowed */

    /* conf, strings copied */
    char *host;
    int port;
    const char *node; /* borrowed (interned) or node_own */
    char *node_own;
    int32_t unit;
    int role_interval_ms;
    bool refuse_cluster;
    bool auth; /* a user or a password is set: for the start line */
    char *username;
    bool all_databases;
    int *databases;
    size_t ndatabases;
    uint64_t events;
    bool configure_notifications;
    int hb_interval_ms;
    int hb_timeout_ms;
    eb_log_t *log;
    eb_notification_cb *on_notification;
    eb_redis_state_cb *on_state;
    void *opaque;

    /* owned; none leaves an event registered after destroy */
    eb_redis_resolver_t *resolver; /* shared by the two clients */
    eb_redis_client_t *sub;        /* subscriber */
    eb_redis_client_t *cmd;        /* commands: role, flags, heartbeat */
    struct eb_redis_down_log down_log; /* one line per failure of the pair */
    struct event *ev_tick;             /* persistent: heartbeat + liveness checks */
    struct event *ev_role;             /* persistent: is the node still a master? */
    bool role_busy;                    /* a ROLE is in flight */
    int64_t role_sent_ns;              /* when that ROLE went out */
    int64_t master_seen_ns;            /* the last time the node said it was a master */

    enum eb_redis_state state;
    bool started;
    bool stopped;
    bool destroying;

    /* the current session (both clients READY) */
    bool cmd_ready;   /* role and flags checked */
    bool subs_sent;   /* the session's subscriptions were sent */
    bool subscribed;  /* every confirmation read */
    bool hb_confirmed;
    int sub_pending;           /* subscribe confirmations still to read */
    int64_t sub_wait_since_ns; /* oldest unanswered subscriber command, 0 = none */
    int64_t last_sub_read_ns;  /* last proof the subscriber is alive */
    int64_t last_tick_ns;
    bool flags_busy;       /* a CONFIG GET/SET round is in flight */
    bool flags_again;      /* events changed meanwhile: check once more */
    char flags_warned[32]; /* required flags we already warned about this session */

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

    /* coordination (handover.h); NULL/0 without */
    eb_handover_t *handover;
    char *ho_channel;
    size_t ho_len;
    int64_t release_deadline_ns; /* a release in progress: when it ends at the latest */
    bool releasing, released;
    bool (*may_claim)(void *opaque);
    void (*on_turn)(bool producing, void *opaque);
    void (*on_released)(void *opaque);
    struct chan_entry cache[CHAN_CACHE_SIZE];
    unsigned cache_last, cache_next;

    eb_metrics_t *own_metrics; /* when conf->metrics was NULL */
    eb_metrics_t *metrics;     /* the registry in use */
    eb_series_t *m_gaps, *m_gap_seconds, *m_reconnects, *m_refusals, *m_config_changes;
    eb_series_t *m_subscribed, *m_gap_open, *m_gap_open_seconds; /* {node} gauges */
    eb_series_t *m_producing, *m_skipped;                         /* {node}, coordination */
    /* What this source adds to the {node} gauges: two sources of one node
     * (a reload's overlap) each count, so neither erases the other. */
    bool counted_subscribed, counted_gap, counted_producing;
};

/* ------------------------------------------------------------------------
 * Small helpers
 * --------------------------------------------------------------------- */

static void clock_resync(eb_redis_source_t *s) {
    int64_t mono = eb_mono_ns();
    s->real_minus_mono_ns = eb_real_ns() - mono;
}

#define STR_EQ(r, lit) eb_redis_reply_is((r), (lit), sizeof(lit) - 1)

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

/* The source's state changed. Said at info when the subscription comes or
 * goes, or the source stops; the back and forth of reconnect attempts is
 * debug (each failed attempt has its own line, redis_client.h). */
static void set_state(eb_redis_source_t *s, enum eb_redis_state st) {
    if (s->state == st)
        return;
    enum eb_redis_state old = s->state;
    s->state = st;
    bool notable = st == EB_REDIS_SUBSCRIBED || st == EB_REDIS_STOPPED ||
                   old == EB_REDIS_SUBSCRIBED || old == EB_REDIS_STOPPED;
    eb_log(s->log, notable ? EB_LOG_INFO : EB_LOG_DEBUG, "redis source state",
           eb_lf_str("from", eb_redis_source_state_name(old)),
           eb_lf_str("to", eb_redis_source_state_name(st)), eb_lf_str("host", s->host),
           eb_lf_int("port", s->port));
    if (s->on_state && !s->destroying)
        s->on_state(st, s->opaque);
}

/* Is what is read now this source's to produce? Always without
 * coordination; with it, from this source's handover marker on (handover.h). */
static bool producing(const eb_redis_source_t *s) {
    return !s->handover || eb_handover_producing(s->handover);
}

/* This source's share of its node's gauges, after any change. */
static void count_gauges(eb_redis_source_t *s) {
    bool sub = s->subscribed && !s->stopped, gap = s->gap_open && !s->stopped;
    bool prod = sub && producing(s);
    if (prod != s->counted_producing) {
        eb_metrics_add(s->m_producing, prod ? 1 : -1);
        s->counted_producing = prod;
    }
    if (sub != s->counted_subscribed) {
        eb_metrics_add(s->m_subscribed, sub ? 1 : -1);
        s->counted_subscribed = sub;
    }
    if (gap != s->counted_gap) {
        eb_metrics_add(s->m_gap_open, gap ? 1 : -1);
        s->counted_gap = gap;
        if (!gap)
            eb_metrics_set(s->m_gap_open_seconds, 0);
    }
}

/* The state the two clients and the subscription add up to. */
static void update_state(eb_redis_source_t *s) {
    enum eb_redis_client_state a = eb_redis_client_state(s->sub),
                               b = eb_redis_client_state(s->cmd);
    count_gauges(s);
    if (s->stopped)
        set_state(s, EB_REDIS_STOPPED);
    else if (s->subscribed)
        set_state(s, EB_REDIS_SUBSCRIBED);
    else if (a == EB_REDIS_CLIENT_WAITING || b == EB_REDIS_CLIENT_WAITING)
        set_state(s, EB_REDIS_WAITING);
    else
        set_state(s, EB_REDIS_CONNECTING);
}

static void close_gap(eb_redis_source_t *s, int64_t now, const char *how) {
    int64_t gap_ns = now - s->gap_start_ns;
    if (gap_ns < 0)
        gap_ns = 0;
    s->gap_open = false;
    count_gauges(s);
    eb_metrics_inc(s->m_gaps);
    eb_metrics_add(s->m_gap_seconds, (double)gap_ns / 1e9);
    eb_log(s->log, EB_LOG_WARN, "redis subscription gap", eb_lf_int("gap_ms", gap_ns / 1000000),
           eb_lf_str("node", s->node), eb_lf_str("ended_by", how),
           eb_lf_str("cause", s->loss_reason), eb_lf_int("attempts", (int64_t)s->gap_attempts));
}

/* The start of a gap on a node that may have been demoted: a demoted master
 * keeps its subscribers (its heartbeats still arrive) but announces no
 * expiry from the moment it stopped being a master, which happened after
 * it last said it was one. With ROLE polled, that is the honest start;
 * `alive` (the last proof the subscriber worked) otherwise. */
static int64_t demoted_since(const eb_redis_source_t *s, int64_t alive) {
    if (s->role_interval_ms && s->master_seen_ns && s->master_seen_ns < alive)
        return s->master_seen_ns;
    return alive;
}

/* The session is over (a client failed, or was reset): forget what it
 * had. When the subscription was up, a gap starts at the last moment the
 * subscriber was known alive: anything published after that may be lost,
 * so that is the honest start. */
static void session_lost(eb_redis_source_t *s, const char *cause, const char *detail) {
    if (s->subscribed && !s->stopped) {
        s->gap_open = true;
        s->gap_start_ns = demoted_since(s, s->last_sub_read_ns);
        s->gap_attempts = 0;
        snprintf(s->loss_reason, sizeof(s->loss_reason), "%s%s%s", cause, *detail ? ": " : "",
                 detail);
    }
    s->subscribed = s->cmd_ready = s->subs_sent = s->hb_confirmed = false;
    if (s->handover)
        eb_handover_unsubscribed(s->handover);
    s->flags_again = false;
    s->sub_pending = 0;
    s->sub_wait_since_ns = 0;
    s->flags_warned[0] = '\0';
}

/* ------------------------------------------------------------------------
 * Notification flags (command client)
 * --------------------------------------------------------------------- */

static void maybe_subscribe(eb_redis_source_t *s);
static void flags_check(eb_redis_source_t *s);

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

static void on_config_set(const redisReply *r, void *opaque) {
    struct flags_set *fs = opaque;
    eb_redis_source_t *s = fs->s;
    if (!r) {
        s->flags_busy = false; /* the session is going away */
        free(fs);
        return;
    }
    char required[32], missing[32];
    eb_notify_required_flags(s->events, required, sizeof(required));
    eb_notify_flags_missing(fs->from, required, missing, sizeof(missing));
    if (eb_redis_reply_is_error(r)) {
        warn_flags(s, required, fs->from, missing, eb_redis_reply_text(r));
    } else {
        eb_metrics_inc(s->m_config_changes);
        eb_log(s->log, EB_LOG_INFO, "redis notify-keyspace-events changed",
               eb_lf_str("from", fs->from), eb_lf_str("to", fs->to), eb_lf_str("added", missing),
               eb_lf_str("host", s->host), eb_lf_int("port", s->port));
    }
    free(fs);
    flags_done(s);
}

static void on_config_get(const redisReply *r, void *opaque) {
    eb_redis_source_t *s = opaque;
    if (!r) {
        s->flags_busy = false;
        return;
    }
    char required[32], missing[32];
    eb_notify_required_flags(s->events, required, sizeof(required));
    if (eb_redis_reply_is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        warn_flags(s, required, NULL, required,
                   eb_redis_reply_is_error(r) ? eb_redis_reply_text(r)
                                              : "CONFIG GET returned nothing");
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
    struct flags_set *fs = calloc(1, sizeof(*fs));
    if (fs) {
        fs->s = s;
        snprintf(fs->from, sizeof(fs->from), "%s", current);
        eb_notify_flags_merge(current, required, fs->to, sizeof(fs->to));
    }
    const char *argv[] = {"CONFIG", "SET", "notify-keyspace-events", fs ? fs->to : ""};
    if (!fs || eb_redis_client_command(s->cmd, -1, on_config_set, fs, 4, argv, NULL) != 0) {
        free(fs);
        s->flags_busy = false;
        eb_redis_client_fail(s->cmd, EB_REDIS_DOWN_OWNER, "redis command could not be queued",
                             "CONFIG SET", NULL);
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
    if (eb_redis_client_command(s->cmd, -1, on_config_get, s, 3, argv, NULL) != 0) {
        s->flags_busy = false;
        eb_redis_client_fail(s->cmd, EB_REDIS_DOWN_OWNER, "redis command could not be queued",
                             "CONFIG GET", NULL);
    }
}

/* ------------------------------------------------------------------------
 * Subscriptions (subscriber client)
 * --------------------------------------------------------------------- */

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
    if (hb_here && s->ho_channel)
        eb_redis_argv_add_bytes(&a, s->ho_channel, s->ho_len);
    int n = a.argc - 1, rc = 0;
    if (!eb_redis_argv_ok(&a))
        rc = EB_ENOMEM;
    else if (n > 0)
        rc = eb_redis_client_subscribe(s->sub, a.argc, a.argv, a.argvlen);
    eb_redis_argv_free(&a);
    return rc < 0 ? rc : n;
}

static void maybe_subscribe(eb_redis_source_t *s) {
    if (s->subs_sent || !s->cmd_ready || s->stopped ||
        eb_redis_client_state(s->sub) != EB_REDIS_CLIENT_READY)
        return;
    int n = sub_command(s, true, s->events, true);
    if (n >= 0 && s->all_databases) {
        const char *argv[] = {"SUBSCRIBE", s->hb_channel, s->ho_channel};
        int argc = s->ho_channel ? 3 : 2;
        n = eb_redis_client_subscribe(s->sub, argc, argv, NULL) == 0 ? n + argc - 1 : EB_ESTATE;
    }
    if (n < 0) {
        eb_redis_client_fail(s->sub, EB_REDIS_DOWN_OWNER, "redis subscribe could not be sent",
                             eb_error_str(n), NULL);
        return;
    }
    s->subs_sent = true;
    s->sub_pending += n;
    s->sub_wait_since_ns = eb_mono_ns();
}

/* ------------------------------------------------------------------------
 * Handover (coordination: handover.h)
 * --------------------------------------------------------------------- */

static void on_claim_reply(const redisReply *r, void *opaque) {
    eb_redis_source_t *s = opaque;
    if (r && !s->stopped && eb_redis_reply_is_error(r))
        eb_log(s->log, EB_LOG_ERROR,
               "redis refused the handover marker; this replica cannot take the master over",
               eb_lf_str("node", s->node), eb_lf_str("error", eb_redis_reply_text(r)),
               eb_lf_str("hint", "the ACL user needs PUBLISH on the channel "
                                 "__expiry_bridge:handover:<coordination.group>"));
}

/* Publish this source's marker when it may take the master over: it is
 * subscribed, has not claimed on this subscription, and the owner says the
 * unit is this replica's (with its lease held). What it reads produces from
 * the moment the marker comes back. */
static void try_claim(eb_redis_source_t *s) {
    if (!s->handover || s->stopped || !s->subscribed || s->releasing ||
        eb_redis_client_state(s->cmd) != EB_REDIS_CLIENT_READY ||
        (s->may_claim && !s->may_claim(s->opaque)))
        return;
    char marker[EB_HANDOVER_MARKER_MAX(300)];
    size_t len = eb_handover_claim(s->handover, marker, sizeof(marker));
    if (!len)
        return;
    const char *argv[] = {"PUBLISH", s->ho_channel, marker};
    size_t argvlen[] = {7, s->ho_len, len};
    if (eb_redis_client_command(s->cmd, -1, on_claim_reply, s, 3, argv, argvlen) != 0)
        eb_redis_client_fail(s->cmd, EB_REDIS_DOWN_OWNER, "redis command could not be queued",
                             "PUBLISH", NULL);
}

/* A release is complete once nothing read is this source's any more:
 * true when it has just become so. */
static bool mark_released(eb_redis_source_t *s, int64_t now) {
    if (!s->releasing || s->released || !eb_handover_released(s->handover, now))
        return false;
    s->released = true;
    count_gauges(s);
    return true;
}

/* The same, telling the owner (on_released) when it has just ended. */
static void check_released(eb_redis_source_t *s, int64_t now) {
    if (mark_released(s, now) && s->on_released && !s->destroying)
        s->on_released(s->opaque);
}

/* A message on the handover channel, in stream order with the keyevents. */
static void on_marker(eb_redis_source_t *s, const redisReply *payload) {
    if (!eb_handover_on_marker(s->handover, payload->str, payload->len))
        return;
    bool mine = eb_handover_producing(s->handover);
    eb_log(s->log, EB_LOG_INFO,
           mine ? "handover: this replica produces the master's notifications from here"
                : "handover: another replica produces the master's notifications from here",
           eb_lf_str("node", s->node), eb_lf_int("unit", s->unit));
    count_gauges(s);
    if (s->on_turn && !s->destroying)
        s->on_turn(mine, s->opaque);
    check_released(s, eb_mono_ns());
}

static void on_subscribed(eb_redis_source_t *s) {
    int64_t now = eb_mono_ns();
    s->master_seen_ns = now; /* the command connection checked ROLE at connect */
    s->last_sub_read_ns = now;
    clock_resync(s);
    eb_redis_client_established(s->sub);
    eb_redis_client_established(s->cmd);
    s->subscribed = true;
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
    if (s->handover) {
        eb_handover_subscribed(s->handover);
        try_claim(s);
    }
    update_state(s);
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
    else if (s->ho_channel && len == s->ho_len && memcmp(p, s->ho_channel, len) == 0)
        id = EV_HANDOVER;
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
    /* When the socket read that brought it began: one clock reading per
     * read (~180 messages in a burst), not one per message. */
    int64_t now = eb_redis_client_read_ns(s->sub);
    /* Any message proves the subscriber alive: under a flood the heartbeat
     * queues behind thousands of events and must not look missed. */
    s->last_sub_read_ns = now;
    int db;
    int id = resolve_channel(s, ch->str, ch->len, &db);
    if (id < 0 || !((s->events >> id) & 1)) {
        if (id == EV_HANDOVER)
            on_marker(s, payload);
        return; /* heartbeat, foreign channel, or an event just dropped */
    }
    if (s->handover && !eb_handover_producing(s->handover)) {
        eb_metrics_inc(s->m_skipped); /* another replica's turn */
        return;
    }
    struct eb_notification n = {
        .event = eb_notify_event_name(id),
        .event_id = id,
        .db = db,
        .key = payload->str,
        .key_len = payload->len,
        .recv_mono_ns = now,
        .recv_real_us = (now + s->real_minus_mono_ns) / 1000,
        .node = s->node,
        .unit = s->unit,
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
        if (!s->subscribed && !s->stopped)
            on_subscribed(s);
    }
}

/* @locality loop thread, inside hiredis (subscriber connection). */
static void sub_on_message(eb_redis_client_t *c, const redisReply *r, void *opaque) {
    eb_redis_source_t *s = opaque;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    const redisReply *t = r->element[0];
    if (t->type == REDIS_REPLY_STRING && t->len == 7 && memcmp(t->str, "message", 7) == 0)
        deliver(s, r->element[1], r->element[2]);
    else if (r->elements >= 4 && STR_EQ(t, "pmessage"))
        deliver(s, r->element[2], r->element[3]);
    else if (t->type == REDIS_REPLY_STRING)
        on_sub_control(s, r);
}

/* ------------------------------------------------------------------------
 * Is the node (still) what we need? (command client)
 * --------------------------------------------------------------------- */

#define HINT_DEMOTED                                                                               \
    "a failover made another node the master: redis-sentinel:// and redis-cluster:// URLs "       \
    "follow it; with redis:// point redis.url at the new master"
#define HINT_CLUSTER                                                                               \
    "each Cluster master announces only its own keys: use redis-cluster://HOST:PORT so the "      \
    "bridge subscribes to every master"

/* ROLE's answer, every role_interval: a demoted master keeps its
 * subscribers connected and goes silent, so this is the only sign. */
static void on_role(const redisReply *r, void *opaque) {
    eb_redis_source_t *s = opaque;
    s->role_busy = false;
    if (!r || s->stopped || eb_redis_reply_is_error(r))
        return; /* gone, or ROLE refused (an ACL): the connect-time check stands */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return;
    if (eb_redis_reply_is(r->element[0], "master", 6)) {
        s->master_seen_ns = s->role_sent_ns;
        return;
    }
    char detail[96];
    snprintf(detail, sizeof(detail), "ROLE says %.32s",
             r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "?");
    eb_redis_client_fail(s->cmd, EB_REDIS_DOWN_ROLE, "redis node is no longer a master", detail,
                         HINT_DEMOTED);
}

/* @locality loop thread (libevent timer). */
static void on_role_tick(evutil_socket_t fd, short what, void *arg) {
    eb_redis_source_t *s = arg;
    (void)fd;
    (void)what;
    if (s->stopped || s->role_busy || eb_redis_client_state(s->cmd) != EB_REDIS_CLIENT_READY)
        return;
    const char *argv[] = {"ROLE"};
    if (eb_redis_client_command(s->cmd, -1, on_role, s, 1, argv, NULL) == 0) {
        s->role_busy = true;
        s->role_sent_ns = eb_mono_ns();
    }
}

/* INFO cluster's answer (standalone only): a Cluster node behind redis://
 * would be heard for its own slots alone, silently. */
static void on_info_cluster(const redisReply *r, void *opaque) {
    eb_redis_source_t *s = opaque;
    if (!r || s->stopped)
        return;
    if (!eb_redis_reply_is_error(r) && r->type == REDIS_REPLY_STRING && r->str &&
        strstr(r->str, "cluster_enabled:1")) {
        eb_redis_client_fail(s->cmd, EB_REDIS_DOWN_ROLE, "redis.url points at a Redis Cluster node",
                             "cluster_enabled:1", HINT_CLUSTER);
        return;
    }
    flags_check(s);
}

/* The command connection is up: refuse a Cluster node where one is not
 * expected, then check the notification flags. */
static void cmd_ready(eb_redis_source_t *s) {
    if (!s->refuse_cluster) {
        flags_check(s);
        return;
    }
    const char *argv[] = {"INFO", "cluster"};
    if (eb_redis_client_command(s->cmd, -1, on_info_cluster, s, 2, argv, NULL) != 0)
        eb_redis_client_fail(s->cmd, EB_REDIS_DOWN_OWNER, "redis command could not be queued",
                             "INFO cluster", NULL);
}

/* ------------------------------------------------------------------------
 * The clients' states
 * --------------------------------------------------------------------- */

/* A client of the pair failed or was reset: log it once for the pair,
 * count it, reset the other, and start over. */
static void client_down(eb_redis_source_t *s, eb_redis_client_t *c,
                        const struct eb_redis_client_down *d) {
    eb_redis_client_t *other = c == s->sub ? s->cmd : s->sub;
    const char *extra = NULL;
    if (c == s->sub)
        extra = strncmp(d->detail, "NOPERM", 6) == 0 ? HINT_NOPERM : HINT_SUB_LOST;
    if (d->cause == EB_REDIS_DOWN_ROLE &&
        (strstr(d->detail, "slave") || strstr(d->detail, "replica")))
        eb_metrics_inc(s->m_refusals);
    eb_redis_client_log_down(c, d, extra);
    session_lost(s, c == s->sub ? "subscriber" : "command", d->detail);
    if (d->cause != EB_REDIS_DOWN_RESET)
        eb_redis_client_reset(other);
}

/* @locality loop thread (a client's timer, or inside hiredis). */
static void on_client_state(eb_redis_client_t *c, enum eb_redis_client_state st,
                            const struct eb_redis_client_down *d, void *opaque) {
    eb_redis_source_t *s = opaque;
    switch (st) {
    case EB_REDIS_CLIENT_CONNECTING:
        if (c == s->sub) {
            s->attempts++;
            if (s->attempts > 1)
                eb_metrics_inc(s->m_reconnects);
            if (s->gap_open)
                s->gap_attempts++;
            clock_resync(s);
        }
        break;
    case EB_REDIS_CLIENT_READY:
        if (c == s->cmd)
            cmd_ready(s);
        else
            maybe_subscribe(s);
        break;
    case EB_REDIS_CLIENT_WAITING:
        client_down(s, c, d);
        break;
    case EB_REDIS_CLIENT_IDLE:
    case EB_REDIS_CLIENT_STOPPED:
        break;
    }
    update_state(s);
}

static const struct eb_redis_client_handlers sub_handlers = {
    .on_state = on_client_state,
    .on_message = sub_on_message,
};
static const struct eb_redis_client_handlers cmd_handlers = {
    .on_state = on_client_state,
    .on_message = NULL,
};

/* ------------------------------------------------------------------------
 * Heartbeat and liveness
 * --------------------------------------------------------------------- */

/* PUBLISH's reply counts our subscriber as a receiver; none means Redis
 * dropped the subscriber without us noticing yet. */
static void on_heartbeat_reply(const redisReply *r, void *opaque) {
    eb_redis_source_t *s = opaque;
    if (!r || s->stopped)
        return;
    if (eb_redis_reply_is_error(r))
        eb_redis_client_fail(s->cmd, EB_REDIS_DOWN_OWNER, "redis heartbeat refused",
                             eb_redis_reply_text(r), NULL);
    else if (r->type == REDIS_REPLY_INTEGER && r->integer == 0 && s->hb_confirmed)
        eb_redis_client_fail(s->sub, EB_REDIS_DOWN_DEAD, NULL, "heartbeat reached no subscriber",
                             NULL);
}

/* Every heartbeat interval: judge the subscriber's liveness, then send the
 * next heartbeat from the command connection. (The command connection's
 * own overdue replies are its client's to judge.) A tick that comes much
 * later than scheduled means this loop was stalled (a slow callback, a
 * paused process): messages may be sitting unread in the socket, so it
 * judges nothing and gives them one interval.
 * @locality loop thread (libevent timer). */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    eb_redis_source_t *s = arg;
    int64_t now = eb_mono_ns();
    int64_t interval = (int64_t)s->hb_interval_ms * 1000000;
    bool stalled = s->last_tick_ns && now - s->last_tick_ns > 2 * interval;
    s->last_tick_ns = now;
    clock_resync(s);
    if (s->gap_open)
        eb_metrics_set(s->m_gap_open_seconds, (double)eb_redis_source_gap_open_ns(s) / 1e9);
    if (s->handover) {
        check_released(s, now);
        try_claim(s);
    }
    if (s->stopped || eb_redis_client_state(s->sub) != EB_REDIS_CLIENT_READY)
        return;
    int64_t limit = (int64_t)s->hb_timeout_ms * 1000000;
    char detail[96];
    if (!stalled && s->sub_wait_since_ns && now - s->sub_wait_since_ns > limit) {
        snprintf(detail, sizeof(detail), "subscriber reply overdue by more than %d ms",
                 s->hb_timeout_ms);
        eb_redis_client_fail(s->sub, EB_REDIS_DOWN_DEAD, NULL, detail, NULL);
    } else if (!stalled && s->subscribed && now - s->last_sub_read_ns > limit) {
        snprintf(detail, sizeof(detail), "no heartbeat read for more than %d ms", s->hb_timeout_ms);
        eb_redis_client_fail(s->sub, EB_REDIS_DOWN_DEAD, NULL, detail, NULL);
    } else if (s->hb_confirmed && eb_redis_client_state(s->cmd) == EB_REDIS_CLIENT_READY) {
        const char *argv[] = {"PUBLISH", s->hb_channel, "1"};
        if (eb_redis_client_command(s->cmd, -1, on_heartbeat_reply, s, 3, argv, NULL) != 0)
            eb_redis_client_fail(s->cmd, EB_REDIS_DOWN_OWNER, "redis command could not be queued",
                                 "PUBLISH", NULL);
    }
}

/* ------------------------------------------------------------------------
 * Metrics
 * --------------------------------------------------------------------- */

int64_t eb_redis_source_gap_open_ns(const eb_redis_source_t *s) {
    if (!s->gap_open)
        return 0;
    int64_t ns = eb_mono_ns() - s->gap_start_ns;
    return ns > 0 ? ns : 0;
}

/* Every family is labelled with the node, so the sources of a Cluster (one
 * per master) count apart, and a reload's replacement of a source for the
 * same node counts on where its predecessor stopped. */
static bool register_metrics(eb_redis_source_t *s, eb_metrics_t *m, char *errstr,
                             size_t errstr_size) {
    static const struct {
        enum eb_metric_type type;
        const char *name, *help;
        size_t off;
    } defs[] = {
        {EB_METRIC_COUNTER, "eb_redis_gaps_total",
         "Times a node's keyevent subscription was lost after being established, counted when "
         "it is restored (or the source stops first); eb_redis_node_gap_open shows one while "
         "it lasts",
         offsetof(struct eb_redis_source, m_gaps)},
        {EB_METRIC_COUNTER, "eb_redis_gap_seconds_total",
         "Seconds without a node's keyevent subscription, from the last sign of life of the "
         "lost one to the restored one, counted when it is restored",
         offsetof(struct eb_redis_source, m_gap_seconds)},
        {EB_METRIC_COUNTER, "eb_redis_reconnects_total",
         "Redis connection attempts after the first one, per node",
         offsetof(struct eb_redis_source, m_reconnects)},
        {EB_METRIC_COUNTER, "eb_redis_replica_refusals_total",
         "Connections refused because the node is a replica (replicas never announce expired)",
         offsetof(struct eb_redis_source, m_refusals)},
        {EB_METRIC_COUNTER, "eb_redis_notify_config_changes_total",
         "CONFIG SET notify-keyspace-events issued to add flags the bridge needs",
         offsetof(struct eb_redis_source, m_config_changes)},
        {EB_METRIC_GAUGE, "eb_redis_node_subscribed",
         "Subscriptions to every keyevent channel of the node: 1 normally, 0 while it is not "
         "subscribed, 2 for a moment while a reload hands over to new settings",
         offsetof(struct eb_redis_source, m_subscribed)},
        {EB_METRIC_GAUGE, "eb_redis_node_gap_open",
         "1 while a subscription gap of the node lasts (the subscription was lost and is not "
         "back yet), else 0",
         offsetof(struct eb_redis_source, m_gap_open)},
        {EB_METRIC_GAUGE, "eb_redis_node_producing",
         "1 while this replica produces the node's notifications (coordination: its turn, "
         "between its own handover marker and another replica's; without coordination: while "
         "subscribed)",
         offsetof(eb_redis_source_t, m_producing)},
        {EB_METRIC_COUNTER, "eb_redis_handover_skipped_total",
         "Notifications read but left to another replica: they came before this replica's "
         "handover marker or after another's (coordination, docs/operations.md)",
         offsetof(eb_redis_source_t, m_skipped)},
        {EB_METRIC_GAUGE, "eb_redis_node_gap_open_seconds",
         "Seconds the node's current subscription gap has lasted so far (refreshed every "
         "heartbeat interval); 0 when there is none",
         offsetof(struct eb_redis_source, m_gap_open_seconds)},
    };
    const char *const node[] = {s->node};
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        eb_metric_t *f =
            eb_metrics_register(m, defs[i].type, defs[i].name, defs[i].help, "node", NULL, 0);
        eb_series_t *series = f ? eb_metrics_series(f, node) : NULL;
        if (!series) {
            eb_error_set(errstr, errstr_size, EB_EINVAL,
                         "cannot register metric %s (out of memory, or registered already with "
                         "another type)",
                         defs[i].name);
            return false;
        }
        *(eb_series_t **)((char *)s + defs[i].off) = series;
    }
    s->metrics = m;
    return true;
}

/* ------------------------------------------------------------------------
 * Public API
 * --------------------------------------------------------------------- */

static uint64_t random_id(const eb_redis_source_t *s) {
    uint64_t id = 0;
    if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id))
        id = (uint64_t)eb_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    return id;
}

static void make_hb_channel(eb_redis_source_t *s) {
    int n = snprintf(s->hb_channel, sizeof(s->hb_channel), HB_PREFIX "%016" PRIx64, random_id(s));
    s->hb_len = (size_t)n;
}

/* Coordination: the handover channel and this source's marker token. */
static bool make_handover(eb_redis_source_t *s, const struct eb_redis_source_conf *conf) {
    if (!conf->handover_channel)
        return true;
    s->ho_channel = strdup(conf->handover_channel);
    s->ho_len = s->ho_channel ? strlen(s->ho_channel) : 0;
    s->handover = eb_handover_new(s->node, random_id(s) | 1);
    s->may_claim = conf->may_claim;
    s->on_turn = conf->on_turn;
    s->on_released = conf->on_released;
    return s->ho_channel && s->handover;
}

static void free_fields(eb_redis_source_t *s) {
    eb_redis_client_destroy(s->sub);
    eb_redis_client_destroy(s->cmd);
    eb_redis_resolver_destroy(s->resolver);
    if (s->ev_tick)
        event_free(s->ev_tick);
    if (s->ev_role)
        event_free(s->ev_role);
    if (s->m_subscribed) {
        s->stopped = true;
        count_gauges(s); /* take this source's share back */
    }
    eb_metrics_destroy(s->own_metrics);
    eb_handover_destroy(s->handover);
    free(s->ho_channel);
    free(s->node_own);
    free(s->host);
    free(s->username);
    free(s->databases);
    free(s);
}

static const char *check_conf(const struct eb_redis_source_conf *conf) {
    if (!conf->all_databases && (conf->ndatabases == 0 || !conf->databases))
        return "redis source needs databases (or all)";
    for (size_t i = 0; !conf->all_databases && i < conf->ndatabases; i++) {
        if (conf->databases[i] < 0)
            return "redis database numbers must not be negative";
    }
    if (conf->events & ~valid_event_mask())
        return "unknown event id in the event mask";
    if (conf->heartbeat_interval_ms < 0 || conf->heartbeat_timeout_ms < 0)
        return "redis timings must not be negative";
    return NULL;
}

/* The two clients, on one resolver: everything but role and kind alike. */
static bool make_clients(eb_redis_source_t *s, const struct eb_redis_source_conf *conf,
                         char *errstr, size_t errstr_size) {
    s->resolver = eb_redis_resolver_new(s->base, errstr, errstr_size);
    if (!s->resolver)
        return false;
    struct eb_redis_client_conf cc = {
        .name = "subscriber",
        .client_name = "expiry-bridge:sub",
        .host = conf->host,
        .port = conf->port,
        .username = conf->username,
        .password = conf->password,
        .tls = conf->tls,
        .kind = EB_REDIS_CLIENT_SUBSCRIBER,
        .connect_timeout_ms = conf->connect_timeout_ms,
        .reply_timeout_ms = s->hb_timeout_ms,
        .reconnect_min_ms = conf->reconnect_min_ms,
        .reconnect_max_ms = conf->reconnect_max_ms,
        .resolver = s->resolver,
        .log = s->log,
        .down_log = &s->down_log,
        .handlers = &sub_handlers,
        .opaque = s,
    };
    s->sub = eb_redis_client_new(s->base, &cc, errstr, errstr_size);
    if (!s->sub)
        return false;
    /* Replicas never announce `expired` (they see del): the command
     * connection refuses one before anything is subscribed. */
    cc.name = "command";
    cc.client_name = "expiry-bridge:cmd";
    cc.kind = EB_REDIS_CLIENT_COMMANDS;
    cc.require_master = true;
    cc.handlers = &cmd_handlers;
    s->cmd = eb_redis_client_new(s->base, &cc, errstr, errstr_size);
    return s->cmd != NULL;
}

eb_redis_source_t *eb_redis_source_new(struct event_base *base,
                                       const struct eb_redis_source_conf *conf, char *errstr,
                                       size_t errstr_size) {
    if (!base || !conf || !conf->host || !*conf->host || !conf->on_notification) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                     "redis source needs an event base, a host and a notification callback");
        return NULL;
    }
    const char *bad = check_conf(conf);
    if (bad) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "%s", bad);
        return NULL;
    }
    eb_redis_source_t *s = calloc(1, sizeof(*s));
    if (!s) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    bool oom = false;
    s->base = base;
    s->host = strdup(conf->host);
    oom |= !s->host;
    s->port = conf->port;
    s->unit = conf->unit;
    s->role_interval_ms = conf->role_interval_ms > 0 ? conf->role_interval_ms : 0;
    s->refuse_cluster = conf->refuse_cluster;
    if (conf->gap_since_ns > 0) {
        s->gap_open = true;
        s->ever_subscribed = true; /* its first subscription ends a gap, not a start-up */
        s->gap_start_ns = conf->gap_since_ns;
        snprintf(s->loss_reason, sizeof(s->loss_reason), "%s",
                 conf->gap_cause ? conf->gap_cause : "the master changed");
    }
    if (conf->node) {
        s->node = conf->node;
    } else {
        char buf[300];
        bool v6 = strchr(conf->host, ':') != NULL;
        snprintf(buf, sizeof(buf), "%s%.256s%s:%d", v6 ? "[" : "", conf->host, v6 ? "]" : "",
                 conf->port);
        oom |= !(s->node = s->node_own = strdup(buf));
    }
    s->auth = (conf->username && *conf->username) || (conf->password && *conf->password);
    if (conf->username && *conf->username)
        oom |= !(s->username = strdup(conf->username));
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
    s->hb_interval_ms = conf->heartbeat_interval_ms > 0 ? conf->heartbeat_interval_ms
                                                        : EB_REDIS_DEFAULT_HEARTBEAT_INTERVAL_MS;
    s->hb_timeout_ms = conf->heartbeat_timeout_ms > 0 ? conf->heartbeat_timeout_ms
                                                      : EB_REDIS_DEFAULT_REPLY_TIMEOUT_MS;
    s->log = conf->log;
    s->on_notification = conf->on_notification;
    s->on_state = conf->on_state;
    s->opaque = conf->opaque;
    s->state = EB_REDIS_STOPPED;
    make_hb_channel(s);
    oom |= !make_handover(s, conf);
    if (oom) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free_fields;
    }
    if (!make_clients(s, conf, errstr, errstr_size))
        goto err_free_fields;
    s->ev_tick = event_new(base, -1, EV_PERSIST, on_tick, s);
    s->ev_role = event_new(base, -1, EV_PERSIST, on_role_tick, s);
    if (!s->ev_tick || !s->ev_role) {
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
    clock_resync(s);
    eb_log(s->log, EB_LOG_INFO, "redis source starting", eb_lf_str("host", s->host),
           eb_lf_int("port", s->port), eb_lf_bool("auth", s->auth),
           eb_lf_str("user", s->username ? s->username : ""),
           eb_lf_bool("all_databases", s->all_databases));
    struct timeval tick = eb_ms_tv(s->hb_interval_ms);
    event_add(s->ev_tick, &tick);
    if (s->role_interval_ms) {
        struct timeval role = eb_ms_tv(s->role_interval_ms);
        event_add(s->ev_role, &role);
    }
    set_state(s, EB_REDIS_CONNECTING);
    if (s->stopped)
        return 0; /* on_state stopped us */
    eb_redis_client_start(s->sub);
    eb_redis_client_start(s->cmd);
    return 0;
}

int64_t eb_redis_source_stop_handover(eb_redis_source_t *s) {
    if (!s || s->stopped)
        return 0;
    int64_t since = s->gap_open     ? s->gap_start_ns
                    : s->subscribed ? demoted_since(s, eb_mono_ns())
                                    : 0;
    s->gap_open = false; /* the successor counts it */
    eb_redis_source_stop(s);
    return since;
}

void eb_redis_source_stop(eb_redis_source_t *s) {
    if (!s || s->stopped)
        return;
    s->stopped = true;
    event_del(s->ev_tick);
    event_del(s->ev_role);
    if (s->gap_open) {
        /* Events were missed and no later subscription will say so. */
        close_gap(s, eb_mono_ns(), "stopped");
    }
    /* The subscriber first: no notification once we decided to stop. */
    eb_redis_client_stop(s->sub);
    eb_redis_client_stop(s->cmd);
    count_gauges(s);
    set_state(s, EB_REDIS_STOPPED);
}

int eb_redis_source_set_events(eb_redis_source_t *s, uint64_t events) {
    if (events & ~valid_event_mask())
        return EB_EINVAL;
    uint64_t old = s->events;
    if (events == old)
        return 0;
    s->events = events;
    if (s->subs_sent) {
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
    if (eb_redis_client_state(s->cmd) == EB_REDIS_CLIENT_READY)
        flags_check(s);
    return 0;
}

enum eb_redis_state eb_redis_source_state(const eb_redis_source_t *s) {
    return s->state;
}

bool eb_redis_source_producing(const eb_redis_source_t *s) {
    return s->subscribed && !s->stopped && producing(s);
}

bool eb_redis_source_release(eb_redis_source_t *s, int grace_ms) {
    if (!s->handover || s->stopped)
        return true;
    if (!s->releasing) {
        s->releasing = true;
        s->released = false;
        eb_handover_release(s->handover, eb_mono_ns() + (int64_t)grace_ms * 1000000);
        eb_log(s->log, EB_LOG_INFO,
               "handover: master given up; producing until another replica's marker",
               eb_lf_str("node", s->node), eb_lf_int("unit", s->unit),
               eb_lf_bool("producing", eb_handover_producing(s->handover)),
               eb_lf_int("grace_ms", grace_ms));
    }
    mark_released(s, eb_mono_ns());
    return s->released;
}

void eb_redis_source_reclaim(eb_redis_source_t *s) {
    if (!s->handover || !s->releasing || s->released)
        return;
    s->releasing = false;
    eb_handover_reclaim(s->handover);
    try_claim(s);
}

int eb_redis_source_command(eb_redis_source_t *s, eb_redis_reply_cb *cb, void *opaque, int argc,
                            const char **argv, const size_t *argvlen) {
    if (!s || !cb || argc < 1 || !argv)
        return EB_EINVAL;
    if (s->stopped)
        return EB_ESTATE;
    return eb_redis_client_command(s->cmd, -1, cb, opaque, argc, argv, argvlen);
}

void eb_redis_source_destroy(eb_redis_source_t *s) {
    if (!s)
        return;
    s->destroying = true;
    s->stopped = true;
    free_fields(s);
}
