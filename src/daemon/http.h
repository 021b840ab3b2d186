/* http.h -- the bridge's HTTP endpoint on libevent's evhttp:
 *
 *   GET /metrics   Prometheus text exposition 0.0.4 of the whole registry
 *                  (content-type: text/plain; version=0.0.4; charset=utf-8)
 *   GET /healthz   200 "ok" whenever the loop answers: liveness. It does not
 *                  look at Redis or Kafka, so an outage never restarts the pod
 *                  (a restart would only add a subscription gap).
 *   GET /readyz    200 when the Redis source is subscribed and Kafka is
 *                  reachable (and the bridge is not draining), else 503; a
 *                  short JSON body says which part is not.
 *
 * GET and HEAD only (405 with `Allow: GET, HEAD` otherwise); any other path
 * is 404. Every answer is built from memory on the loop thread, so nothing
 * here blocks the loop; idle or slow clients are cut off after a timeout.
 *
 * @locality every function and callback runs on the loop thread.
 */
#ifndef EB_HTTP_H
#define EB_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/log.h"
#include "core/metrics.h"

struct event_base;
typedef struct eb_http eb_http_t;

/* What /readyz reports. The strings are static or owned by the caller and
 * only read until the callback returns. */
struct eb_http_readiness {
    bool redis_ok;     /* every keyevent channel subscribed */
    const char *redis; /* its state in a word: "subscribed", "connecting", ... */
    bool kafka_ok;     /* at least one broker connection up */
    bool draining;     /* shutting down: never ready */
};

/* Called once per /readyz request; fills *out (zeroed before the call). */
typedef void(eb_http_ready_cb)(struct eb_http_readiness *out, void *opaque);

struct eb_http_conf {
    const char *listen;      /* "host:port", "0.0.0.0:9464", "[::]:9464"; copied */
    eb_metrics_t *metrics;   /* borrowed; must outlive the server */
    eb_log_t *log;           /* borrowed; must outlive the server; may be NULL */
    eb_http_ready_cb *ready; /* required */
    void *opaque;            /* passed to ready; borrowed */
};

/* Bind every address `listen` resolves to and start serving. NULL + errstr
 * naming the address when it cannot listen (in use, not permitted, no such
 * address) or on OOM. Free with eb_http_destroy(). */
eb_http_t *eb_http_new(struct event_base *base, const struct eb_http_conf *conf, char *errstr,
                       size_t errstr_size);

/* The address it was created with (owned by the server). */
const char *eb_http_listen(const eb_http_t *h);

/* Stop listening and close every connection. NULL is a no-op. Leaves no
 * event registered on the base. */
void eb_http_destroy(eb_http_t *h);

#endif
