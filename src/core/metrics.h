/* metrics.h -- counters, gauges and histograms, rendered as Prometheus text
 * (exposition format 0.0.4) for /metrics and read back for log summaries.
 *
 * A family is registered once (name, help, label names); a series is one
 * set of label values, created on first use and kept until the registry is
 * destroyed, so a pointer to it can be cached on the hot path.
 *
 * @locality loop thread only: no locks, no atomics. librdkafka delivery
 * reports reach us through rd_kafka_poll() on the loop thread.
 */
#ifndef EB_METRICS_H
#define EB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"

typedef struct eb_metrics eb_metrics_t;
typedef struct eb_metric eb_metric_t;
typedef struct eb_series eb_series_t;

enum eb_metric_type { EB_METRIC_COUNTER, EB_METRIC_GAUGE, EB_METRIC_HISTOGRAM };

/* Free with eb_metrics_destroy(); NULL when out of memory. */
eb_metrics_t *eb_metrics_new(void);
/* Frees every family and series; cached series pointers die with it. NULL is
 * a no-op. */
void eb_metrics_destroy(eb_metrics_t *m);

/* Register a family, or find it: when `name` is registered already with the
 * same type, labels and buckets, that family is returned, so a component
 * rebuilt at runtime (a reconnect with new settings) keeps counting where
 * its predecessor stopped. `labels` is a comma-separated list of label names
 * ("route,topic") or NULL. Histograms take ascending upper bounds (the +Inf
 * bucket is implied); others pass NULL, 0. Strings are copied. Returns the
 * family (owned by the registry), or NULL when out of memory, when `name`
 * is registered already with another shape, when a name is not a valid Prometheus name (or a
 * label is duplicated, reserved "__*", or "le" on a histogram), or when the
 * bounds are not finite and strictly ascending. */
eb_metric_t *eb_metrics_register(eb_metrics_t *m, enum eb_metric_type type, const char *name,
                            const char *help, const char *labels, const double *buckets,
                            size_t nbuckets);

/* A gauge whose value is read from fn(opaque) when rendered (queue depth,
 * connection state). fn runs on the loop thread. opaque is borrowed: its
 * owner calls eb_metrics_unbind() before it goes away. Registering the same
 * name again re-binds the family to the new fn/opaque (the newest owner
 * answers); NULL when the name belongs to a family of another kind. */
eb_metric_t *eb_metrics_register_gauge_fn(eb_metrics_t *m, const char *name, const char *help,
                                     double (*fn)(void *opaque), void *opaque);

/* Forget every callback bound to opaque (its owner is being destroyed).
 * Those gauges render no sample until someone registers them again. */
void eb_metrics_unbind(eb_metrics_t *m, const void *opaque);

/* The series for these label values (as many as the family has labels;
 * ignored when it has none). f must not be NULL. Values are copied. Never
 * returns NULL: when out of memory it returns the registry's scratch series,
 * which is never rendered, so callers need no error path on the hot path. */
eb_series_t *eb_metrics_series(eb_metric_t *f, const char *const *label_values);

/* Shorthand for a family without labels. */
static inline eb_series_t *eb_metrics_series0(eb_metric_t *f) {
    return eb_metrics_series(f, NULL);
}

void eb_metrics_inc(eb_series_t *s);
void eb_metrics_add(eb_series_t *s, double v);
void eb_metrics_set(eb_series_t *s, double v);
void eb_metrics_observe(eb_series_t *s, double v);

/* Counter/gauge value, or a histogram's sum. */
double eb_metrics_value(const eb_series_t *s);
/* Histogram observation count (0 for other types). */
uint64_t eb_metrics_count(const eb_series_t *s);
/* Histogram quantile (0..1) estimated by linear interpolation inside the
 * bucket, as Prometheus's histogram_quantile() does; 0 when empty. */
double eb_metrics_quantile(const eb_series_t *s, double q);

/* Sum of one family over all its series (counter totals for summaries). */
double eb_metrics_total(const eb_metric_t *f);

/* Append the whole registry in Prometheus text format. */
void eb_metrics_render(const eb_metrics_t *m, struct eb_buf *out);

/* Bucket bounds in seconds shared by the latency histograms: from 0.5 ms
 * (a healthy delivery) to 10 min (Redis's sampler finding a key late). */
extern const double eb_metrics_latency_buckets[];
extern const size_t eb_metrics_latency_nbuckets;

#endif
