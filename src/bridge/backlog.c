/* backlog.c -- bounded FIFO of notifications, delivered in slices at low
 * priority (contract in backlog.h).
 *
 * Storage is a list of fixed-size blocks holding variable-size records
 * back to back (header + key bytes, 8-byte aligned), so a push is one
 * memcpy and no allocation in steady state: drained blocks go to a short
 * spare list and are reused. A key too large for a block gets a block of
 * its own size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "bridge/backlog.h"
#include "core/error.h"

/* 256 KiB blocks: a few thousand typical notifications each; big enough
 * that block turnover is rare, small enough to hand memory back soon after
 * a burst. */
#define EB_BACKLOG_BLOCK (256 * 1024)
/* Drained blocks kept for reuse; the rest are freed. */
#define EB_BACKLOG_SPARES 4
/* Notifications handed to the pipeline per activation: enough to amortise
 * the loop turn, few enough (~0.5 ms of work) that a ready read waits
 * little. */
#define EB_BACKLOG_SLICE 256
/* Per-record overhead counted against max_bytes, beside the key. */
#define EB_BACKLOG_OVERHEAD sizeof(struct record)
/* While full, one log line per second at most. */
#define EB_BACKLOG_FULL_LOG_MS 1000

struct record {
    int64_t recv_mono_ns;
    int64_t recv_real_us;
    const char *event; /* static storage (notify_flags) */
    const char *node;  /* interned for the daemon's life (strpool.h) */
    uint32_t key_len;
    int32_t db;
    int32_t event_id;
    int32_t unit;
    /* key bytes follow */
};

struct block {
    struct block *next;
    size_t size; /* bytes of data[] */
    size_t head; /* next record to read */
    size_t tail; /* next free byte */
    _Alignas(8) unsigned char data[];
};

struct eb_backlog {
    struct event *deliver_ev;
    eb_notification_cb *deliver;
    void *opaque;
    eb_log_t *log;
    eb_metrics_t *metrics;
    size_t max_events;
    size_t max_bytes;
    size_t events;
    size_t bytes;
    struct block *first; /* read end */
    struct block *last;  /* write end */
    struct block *spares;
    size_t nspares;
    bool scheduled;  /* deliver_ev is active: a push need not activate it */
    bool delivering; /* inside deliver(): flush must not recurse */
    /* full episode */
    bool full;
    uint64_t full_drops;
    struct eb_log_limit full_limit;
    eb_series_t *m_dropped;
    eb_series_t *m_peak;
    size_t peak;
};

static size_t record_size(size_t key_len) {
    return (sizeof(struct record) + key_len + 7) & ~(size_t)7;
}

static double gauge_events(void *opaque) {
    return (double)((eb_backlog_t *)opaque)->events;
}

static int register_metrics(eb_backlog_t *b) {
    eb_metric_t *dropped = eb_metrics_register(
        b->metrics, EB_METRIC_COUNTER, "eb_backlog_dropped_total",
        "Notifications read from Redis but dropped because the read-ahead backlog was full "
        "(the pipeline could not keep up).",
        NULL, NULL, 0);
    eb_metric_t *peak = eb_metrics_register(
        b->metrics, EB_METRIC_GAUGE, "eb_backlog_peak_events",
        "Most notifications the read-ahead backlog has held at once.", NULL, NULL, 0);
    if (!dropped || !peak ||
        !eb_metrics_register_gauge_fn(b->metrics, "eb_backlog_events",
                                 "Notifications read from Redis and not yet routed.", gauge_events,
                                 b))
        return EB_ENOMEM;
    b->m_dropped = eb_metrics_series0(dropped);
    b->m_peak = eb_metrics_series0(peak);
    return 0;
}

static void on_deliver(evutil_socket_t fd, short what, void *arg);

eb_backlog_t *eb_backlog_new(struct event_base *base, const struct eb_backlog_conf *conf,
                             char *errstr, size_t errstr_size) {
    if (!conf->deliver || !conf->max_events || !conf->max_bytes) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "backlog needs a delivery callback and bounds");
        return NULL;
    }
    eb_backlog_t *b = calloc(1, sizeof(*b));
    if (!b) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    b->deliver = conf->deliver;
    b->opaque = conf->opaque;
    b->log = conf->log;
    b->metrics = conf->metrics;
    b->max_events = conf->max_events;
    b->max_bytes = conf->max_bytes;
    b->deliver_ev = event_new(base, -1, 0, on_deliver, b);
    if (!b->deliver_ev || event_priority_set(b->deliver_ev, conf->priority) != 0) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                  "cannot create the backlog's event at priority %d (event_base_priority_init?)",
                  conf->priority);
        goto err_destroy;
    }
    if (b->metrics && register_metrics(b)) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "cannot register backlog metrics");
        goto err_destroy;
    }
    return b;

err_destroy:
    eb_backlog_destroy(b);
    return NULL;
}

static struct block *get_block(eb_backlog_t *b, size_t need) {
    if (need <= EB_BACKLOG_BLOCK && b->spares) {
        struct block *blk = b->spares;
        b->spares = blk->next;
        b->nspares--;
        blk->next = NULL;
        blk->head = blk->tail = 0;
        return blk;
    }
    size_t size = need > EB_BACKLOG_BLOCK ? need : EB_BACKLOG_BLOCK;
    struct block *blk = malloc(sizeof(*blk) + size);
    if (!blk)
        return NULL;
    blk->next = NULL;
    blk->size = size;
    blk->head = blk->tail = 0;
    return blk;
}

static void put_block(eb_backlog_t *b, struct block *blk) {
    if (blk->size == EB_BACKLOG_BLOCK && b->nspares < EB_BACKLOG_SPARES) {
        blk->next = b->spares;
        b->spares = blk;
        b->nspares++;
    } else {
        free(blk);
    }
}

/* A drop at the bound: counted always; logged at the start of an episode
 * and then at most once a second, so the log says it loudly without a line
 * per event. */
static void drop(eb_backlog_t *b, const struct eb_notification *n) {
    uint64_t suppressed = 0;
    b->full_drops++;
    if (b->m_dropped)
        eb_metrics_inc(b->m_dropped);
    if (!b->full) {
        b->full = true;
        b->full_limit.next_ms = 0; /* the first drop of an episode is always logged */
    }
    if (eb_log_limit_allow(&b->full_limit, EB_BACKLOG_FULL_LOG_MS, &suppressed))
        eb_log(b->log, EB_LOG_ERROR,
               "read-ahead backlog full: dropping notifications (the pipeline cannot keep up "
               "with Redis; the subscription is kept)",
               eb_lf_int("dropped_in_episode", (int64_t)b->full_drops),
               eb_lf_int("backlog_events", (int64_t)b->events),
               eb_lf_int("max_events", (int64_t)b->max_events),
               eb_lf_int("backlog_bytes", (int64_t)b->bytes),
               eb_lf_int("max_bytes", (int64_t)b->max_bytes), eb_lf_int("db", n->db),
               eb_lf_str("event", n->event));
}

/* A zero timeout, not event_active(): libevent 2.1 runs an event activated
 * from its own callback again in the same pass, which would deliver the
 * whole backlog without ever polling the socket. A timer fires on the next
 * loop iteration, after the poll, and at the lowest priority it waits
 * further while any read is ready. */
static void schedule(eb_backlog_t *b) {
    static const struct timeval now = {0, 0};
    if (b->scheduled || b->delivering)
        return;
    b->scheduled = true;
    event_add(b->deliver_ev, &now);
}

void eb_backlog_push(const struct eb_notification *n, void *opaque) {
    eb_backlog_t *b = opaque;
    size_t rs = record_size(n->key_len);
    if (b->events >= b->max_events || b->bytes + n->key_len + EB_BACKLOG_OVERHEAD > b->max_bytes ||
        n->key_len > UINT32_MAX) {
        drop(b, n);
        return;
    }
    struct block *blk = b->last;
    if (!blk || blk->size - blk->tail < rs) {
        blk = get_block(b, rs);
        if (!blk) {
            drop(b, n);
            return;
        }
        if (b->last)
            b->last->next = blk;
        else
            b->first = blk;
        b->last = blk;
    }
    struct record *r = (struct record *)(blk->data + blk->tail);
    r->recv_mono_ns = n->recv_mono_ns;
    r->recv_real_us = n->recv_real_us;
    r->event = n->event;
    r->node = n->node;
    r->unit = n->unit;
    r->key_len = (uint32_t)n->key_len;
    r->db = n->db;
    r->event_id = n->event_id;
    memcpy(r + 1, n->key, n->key_len);
    blk->tail += rs;
    b->events++;
    b->bytes += n->key_len + EB_BACKLOG_OVERHEAD;
    if (b->events > b->peak) {
        b->peak = b->events;
        if (b->m_peak)
            eb_metrics_set(b->m_peak, (double)b->peak);
    }
    schedule(b);
}

/* Hand the oldest record to the pipeline and release its space. */
static void deliver_one(eb_backlog_t *b) {
    struct block *blk = b->first;
    struct record *r = (struct record *)(blk->data + blk->head);
    struct eb_notification n = {
        .event = r->event,
        .event_id = r->event_id,
        .db = r->db,
        .key = (const char *)(r + 1),
        .key_len = r->key_len,
        .recv_mono_ns = r->recv_mono_ns,
        .recv_real_us = r->recv_real_us,
        .node = r->node,
        .unit = r->unit,
    };
    b->deliver(&n, b->opaque);
    blk->head += record_size(r->key_len);
    b->events--;
    b->bytes -= r->key_len + EB_BACKLOG_OVERHEAD;
    if (blk->head == blk->tail) {
        b->first = blk->next;
        if (!b->first)
            b->last = NULL;
        put_block(b, blk);
    }
}

static void end_full_episode(eb_backlog_t *b) {
    if (!b->full || b->events > b->max_events / 2)
        return;
    eb_log(b->log, EB_LOG_ERROR, "read-ahead backlog accepting notifications again",
           eb_lf_int("dropped_in_episode", (int64_t)b->full_drops));
    b->full = false;
    b->full_drops = 0;
}

/* @locality loop thread, at the base's lowest priority: runs only when no
 * Redis read (or other higher-priority event) is ready. */
static void on_deliver(evutil_socket_t fd, short what, void *arg) {
    eb_backlog_t *b = arg;
    b->scheduled = false;
    b->delivering = true;
    for (int i = 0; i < EB_BACKLOG_SLICE && b->events; i++)
        deliver_one(b);
    b->delivering = false;
    end_full_episode(b);
    if (b->events)
        schedule(b);
}

void eb_backlog_set_bounds(eb_backlog_t *b, size_t max_events, size_t max_bytes) {
    if (max_events)
        b->max_events = max_events;
    if (max_bytes)
        b->max_bytes = max_bytes;
}

size_t eb_backlog_len(const eb_backlog_t *b) {
    return b->events;
}

void eb_backlog_flush(eb_backlog_t *b) {
    if (b->delivering)
        return;
    b->delivering = true;
    while (b->events)
        deliver_one(b);
    b->delivering = false;
    end_full_episode(b);
}

void eb_backlog_destroy(eb_backlog_t *b) {
    if (!b)
        return;
    if (b->events && b->m_dropped)
        eb_metrics_add(b->m_dropped, (double)b->events);
    if (b->events)
        eb_log(b->log, EB_LOG_ERROR, "read-ahead backlog discarded at shutdown",
               eb_lf_int("notifications", (int64_t)b->events));
    while (b->first) {
        struct block *next = b->first->next;
        free(b->first);
        b->first = next;
    }
    while (b->spares) {
        struct block *next = b->spares->next;
        free(b->spares);
        b->spares = next;
    }
    if (b->metrics)
        eb_metrics_unbind(b->metrics, b);
    if (b->deliver_ev)
        event_free(b->deliver_ev);
    free(b);
}
