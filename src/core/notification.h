/* notification.h -- one keyevent notification as the bridge passes it on:
 * which event, which database, which key, and when the bridge read it.
 *
 * The value every stage after the Redis reader sees (backlog, pipeline,
 * ledger), whichever topology the notification came from. A plain value
 * struct: no functions, no allocation.
 */
#ifndef EB_NOTIFICATION_H
#define EB_NOTIFICATION_H

#include <stddef.h>
#include <stdint.h>

/* One notification. Every pointer is borrowed until the callback returns. */
struct eb_notification {
    const char *event; /* keyevent name, static storage ("expired") */
    int event_id;      /* notify_flags.h id */
    int db;
    const char *key; /* the key, any bytes, key_len long */
    size_t key_len;
    int64_t recv_mono_ns; /* CLOCK_MONOTONIC when the bridge read it */
    int64_t recv_real_us; /* CLOCK_REALTIME µs when the bridge read it */
    const char *node;     /* "host:port" of the master that announced it, interned for
                             the daemon's life (strpool.h); NULL when not known */
    int32_t unit;         /* that master's unit (docs/topology.md): 0 when there is one */
};

/* Called once per notification read, in order. */
typedef void(eb_notification_cb)(const struct eb_notification *n, void *opaque);

#endif
