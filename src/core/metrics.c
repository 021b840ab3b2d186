/* metrics.c -- an in-process metrics registry and its Prometheus rendering.
 * Families and series are small linked lists: the number of series is the
 * number of routes × a handful, and lookups happen when a route is set up,
 * not per event (callers cache the series pointer). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"

#define EB_METRIC_MAX_LABELS 8

struct eb_series {
    struct eb_series *next;
    char **label_values;
    double value; /* counter, gauge, histogram sum */
    uint64_t count;
    uint64_t *bucket_counts; /* histograms: nbuckets, not cumulative */
    const struct eb_metric *family;
};

struct eb_metric {
    struct eb_metric *next;
    enum eb_metric_type type;
    char *name;
    char *help;
    char *label_names[EB_METRIC_MAX_LABELS];
    size_t nlabels;
    double *buckets;
    size_t nbuckets;
    double (*fn)(void *);
    void *fn_opaque;
    struct eb_series *series;
    struct eb_series **tail;
    struct eb_metrics *owner;
    bool unbound; /* a callback gauge whose owner went away (eb_metrics_unbind) */
};

struct eb_metrics {
    struct eb_metric *families;
    struct eb_metric **tail;
    struct eb_series scratch;
    uint64_t scratch_buckets[64];
};

const double eb_metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10,
                                             30,     60,    120,    300,   600};
const size_t eb_metrics_latency_nbuckets =
    sizeof(eb_metrics_latency_buckets) / sizeof(eb_metrics_latency_buckets[0]);

eb_metrics_t *eb_metrics_new(void) {
    eb_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->tail = &m->families;
    m->scratch.bucket_counts = m->scratch_buckets;
    return m;
}

static void series_free(struct eb_series *s, size_t nlabels) {
    for (size_t i = 0; s->label_values && i < nlabels; i++)
        free(s->label_values[i]);
    free(s->label_values);
    free(s->bucket_counts);
    free(s);
}

static void family_free(struct eb_metric *f) {
    struct eb_series *s = f->series;
    while (s) {
        struct eb_series *next = s->next;
        series_free(s, f->nlabels);
        s = next;
    }
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->label_names[i]);
    free(f->name);
    free(f->help);
    free(f->buckets);
    free(f);
}

void eb_metrics_destroy(eb_metrics_t *m) {
    if (!m)
        return;
    struct eb_metric *f = m->families;
    while (f) {
        struct eb_metric *next = f->next;
        family_free(f);
        f = next;
    }
    free(m);
}

static struct eb_metric *find_family(const eb_metrics_t *m, const char *name) {
    for (struct eb_metric *f = m->families; f; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

static bool split_labels(struct eb_metric *f, const char *labels) {
    if (!labels || !*labels)
        return true;
    const char *p = labels;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (f->nlabels == EB_METRIC_MAX_LABELS)
            return false;
        f->label_names[f->nlabels] = strndup(p, n);
        if (!f->label_names[f->nlabels])
            return false;
        f->nlabels++;
        p += n + (comma ? 1 : 0);
    }
    return true;
}

/* Prometheus names: metric [a-zA-Z_:][a-zA-Z0-9_:]*, label [a-zA-Z_][a-zA-Z0-9_]*.
 * One bad name makes a scraper reject the whole page, so it is refused at
 * registration instead. */
static bool valid_name(const char *s, size_t n, bool colon_ok) {
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon_ok && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Label names must be valid, unique, not reserved ("__" prefix), and not
 * "le" on a histogram (its bucket label). */
static bool labels_valid(const struct eb_metric *f) {
    for (size_t i = 0; i < f->nlabels; i++) {
        const char *l = f->label_names[i];
        if (!valid_name(l, strlen(l), false) || strncmp(l, "__", 2) == 0)
            return false;
        if (f->type == EB_METRIC_HISTOGRAM && strcmp(l, "le") == 0)
            return false;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(l, f->label_names[j]) == 0)
                return false;
        }
    }
    return true;
}

/* Bucket bounds must be finite and strictly ascending, or observations
 * would land in the wrong bucket and cumulative counts would lie. */
static bool buckets_valid(const double *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(b[i]) || (i && b[i] <= b[i - 1]))
            return false;
    }
    return true;
}

/* Does family f have exactly this type, label list and bucket layout? */
static bool same_shape(const struct eb_metric *f, enum eb_metric_type type, const char *labels,
                       const double *buckets, size_t nbuckets) {
    if (f->type != type || f->fn || f->nbuckets != (type == EB_METRIC_HISTOGRAM ? nbuckets : 0))
        return false;
    for (size_t i = 0; i < f->nbuckets; i++) {
        if (f->buckets[i] != buckets[i])
            return false;
    }
    const char *p = labels ? labels : "";
    for (size_t i = 0; i < f->nlabels; i++) {
        size_t n = strlen(f->label_names[i]);
        if (strncmp(p, f->label_names[i], n) != 0 || (p[n] != ',' && p[n] != '\0'))
            return false;
        p += n + (p[n] == ',');
    }
    return *p == '\0';
}

eb_metric_t *eb_metrics_register(eb_metrics_t *m, enum eb_metric_type type, const char *name,
                            const char *help, const char *labels, const double *buckets,
                            size_t nbuckets) {
    if (!name || !valid_name(name, strlen(name), true) || nbuckets > 63)
        return NULL;
    struct eb_metric *existing = find_family(m, name);
    if (existing) /* a rebuilt component finds its counters where it left them */
        return same_shape(existing, type, labels, buckets, nbuckets) ? existing : NULL;
    if (type == EB_METRIC_HISTOGRAM && !buckets_valid(buckets, nbuckets))
        return NULL;
    struct eb_metric *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->type = type;
    f->owner = m;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->tail = &f->series;
    if (!f->name || !f->help || !split_labels(f, labels) || !labels_valid(f))
        goto err_free_family;
    if (type == EB_METRIC_HISTOGRAM && nbuckets) {
        f->buckets = malloc(nbuckets * sizeof(double));
        if (!f->buckets)
            goto err_free_family;
        memcpy(f->buckets, buckets, nbuckets * sizeof(double));
        f->nbuckets = nbuckets;
    }
    *m->tail = f;
    m->tail = &f->next;
    return f;

err_free_family:
    family_free(f);
    return NULL;
}

eb_metric_t *eb_metrics_register_gauge_fn(eb_metrics_t *m, const char *name, const char *help,
                                     double (*fn)(void *opaque), void *opaque) {
    struct eb_metric *f = find_family(m, name);
    if (f) {
        /* Only a callback gauge (bound now, or unbound by its late owner)
         * can change hands; a counter or plain gauge of that name cannot. */
        if (!f->fn && !f->unbound)
            return NULL;
        f->fn = fn;
        f->fn_opaque = opaque;
        f->unbound = false;
        return f;
    }
    f = eb_metrics_register(m, EB_METRIC_GAUGE, name, help, NULL, NULL, 0);
    if (f) {
        f->fn = fn;
        f->fn_opaque = opaque;
    }
    return f;
}

void eb_metrics_unbind(eb_metrics_t *m, const void *opaque) {
    for (struct eb_metric *f = m->families; f; f = f->next) {
        if (f->fn && f->fn_opaque == opaque) {
            f->fn = NULL;
            f->fn_opaque = NULL;
            f->unbound = true;
        }
    }
}

static bool labels_equal(const struct eb_metric *f, const struct eb_series *s,
                         const char *const *values) {
    for (size_t i = 0; i < f->nlabels; i++) {
        if (strcmp(s->label_values[i], values[i] ? values[i] : "") != 0)
            return false;
    }
    return true;
}

/* When a series cannot be allocated the caller gets the registry's scratch
 * series: written to, never rendered, so the hot path needs no NULL check. */
static struct eb_series *scratch(struct eb_metric *f) {
    return &f->owner->scratch;
}

eb_series_t *eb_metrics_series(eb_metric_t *f, const char *const *values) {
    for (struct eb_series *s = f->series; s; s = s->next) {
        if (f->nlabels == 0 || labels_equal(f, s, values))
            return s;
    }
    struct eb_series *s = calloc(1, sizeof(*s));
    if (!s)
        return scratch(f);
    s->family = f;
    if (f->nlabels) {
        s->label_values = calloc(f->nlabels, sizeof(char *));
        if (!s->label_values)
            goto err_free_series;
        for (size_t i = 0; i < f->nlabels; i++) {
            s->label_values[i] = strdup(values[i] ? values[i] : "");
            if (!s->label_values[i])
                goto err_free_series;
        }
    }
    if (f->type == EB_METRIC_HISTOGRAM) {
        s->bucket_counts = calloc(f->nbuckets + 1, sizeof(uint64_t));
        if (!s->bucket_counts)
            goto err_free_series;
    }
    *f->tail = s;
    f->tail = &s->next;
    return s;

err_free_series:
    series_free(s, f->nlabels);
    return scratch(f);
}

void eb_metrics_inc(eb_series_t *s) {
    s->value += 1;
}

void eb_metrics_add(eb_series_t *s, double v) {
    s->value += v;
}

void eb_metrics_set(eb_series_t *s, double v) {
    s->value = v;
}

void eb_metrics_observe(eb_series_t *s, double v) {
    const struct eb_metric *f = s->family;
    size_t i = 0;
    if (f) {
        while (i < f->nbuckets && v > f->buckets[i])
            i++;
    }
    s->bucket_counts[i]++;
    s->count++;
    s->value += v;
}

double eb_metrics_value(const eb_series_t *s) {
    return s->value;
}

uint64_t eb_metrics_count(const eb_series_t *s) {
    return s->count;
}

double eb_metrics_quantile(const eb_series_t *s, double q) {
    const struct eb_metric *f = s->family;
    if (!f || f->type != EB_METRIC_HISTOGRAM || s->count == 0)
        return 0;
    /* Outside 0..1 means the ends; NaN the low one. */
    if (!(q >= 0))
        q = 0;
    else if (q > 1)
        q = 1;
    double rank = q * (double)s->count;
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbuckets; i++) {
        uint64_t prev = cum;
        cum += s->bucket_counts[i];
        if ((double)cum >= rank && s->bucket_counts[i] > 0) {
            if (i == f->nbuckets) /* +Inf bucket: the highest finite bound */
                return f->nbuckets ? f->buckets[f->nbuckets - 1] : 0;
            double lo = i ? f->buckets[i - 1] : 0, hi = f->buckets[i];
            return lo + (hi - lo) * (rank - (double)prev) / (double)s->bucket_counts[i];
        }
    }
    return f->nbuckets ? f->buckets[f->nbuckets - 1] : 0;
}

double eb_metrics_total(const eb_metric_t *f) {
    double t = 0;
    for (const struct eb_series *s = f->series; s; s = s->next)
        t += s->value;
    return t;
}

/* Label values escape backslash, quote and newline; help escapes backslash
 * and newline (exposition format 0.0.4). */
static void put_escaped(struct eb_buf *b, const char *s, bool quote) {
    for (; *s; s++) {
        if (*s == '\\')
            eb_buf_puts(b, "\\\\");
        else if (*s == '\n')
            eb_buf_puts(b, "\\n");
        else if (quote && *s == '"')
            eb_buf_puts(b, "\\\"");
        else
            eb_buf_putc(b, *s);
    }
}

/* The shortest text that reads back as exactly v: "%g" alone rounds to six
 * digits (a bucket bound of 1234567 became le="1.23457e+06", a different
 * bucket), and "%.17g" prints 0.1 as 0.10000000000000001. */
static void format_number(char *num, size_t size, double v) {
    if (isinf(v)) {
        snprintf(num, size, v > 0 ? "+Inf" : "-Inf");
    } else if (isnan(v)) {
        snprintf(num, size, "NaN");
    } else if (fabs(v) < 9e15 && v == (double)(int64_t)v) {
        /* fabs first: converting an out-of-range double to int64_t is UB. */
        snprintf(num, size, "%lld", (long long)v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(num, size, "%.*g", prec, v);
            if (strtod(num, NULL) == v)
                break;
        }
    }
}

static void put_number(struct eb_buf *b, double v) {
    char num[48];
    format_number(num, sizeof(num), v);
    eb_buf_puts(b, num);
}

/* name{l1="v1",...,extra="x"} value */
static void put_sample(struct eb_buf *b, const struct eb_metric *f, const struct eb_series *s,
                       const char *suffix, const char *extra_name, const char *extra_value,
                       double v) {
    eb_buf_puts(b, f->name);
    eb_buf_puts(b, suffix);
    if (f->nlabels || extra_name) {
        eb_buf_putc(b, '{');
        for (size_t i = 0; i < f->nlabels; i++) {
            if (i)
                eb_buf_putc(b, ',');
            eb_buf_puts(b, f->label_names[i]);
            eb_buf_puts(b, "=\"");
            put_escaped(b, s->label_values[i], true);
            eb_buf_putc(b, '"');
        }
        if (extra_name) {
            if (f->nlabels)
                eb_buf_putc(b, ',');
            eb_buf_puts(b, extra_name);
            eb_buf_puts(b, "=\"");
            eb_buf_puts(b, extra_value);
            eb_buf_putc(b, '"');
        }
        eb_buf_putc(b, '}');
    }
    eb_buf_putc(b, ' ');
    put_number(b, v);
    eb_buf_putc(b, '\n');
}

static void render_histogram(struct eb_buf *b, const struct eb_metric *f,
                             const struct eb_series *s) {
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbuckets; i++) {
        char le[48];
        cum += s->bucket_counts[i];
        format_number(le, sizeof(le), i == f->nbuckets ? INFINITY : f->buckets[i]);
        put_sample(b, f, s, "_bucket", "le", le, (double)cum);
    }
    put_sample(b, f, s, "_sum", NULL, NULL, s->value);
    put_sample(b, f, s, "_count", NULL, NULL, (double)s->count);
}

void eb_metrics_render(const eb_metrics_t *m, struct eb_buf *b) {
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    for (const struct eb_metric *f = m->families; f; f = f->next) {
        eb_buf_puts(b, "# HELP ");
        eb_buf_puts(b, f->name);
        eb_buf_putc(b, ' ');
        put_escaped(b, f->help, false);
        eb_buf_puts(b, "\n# TYPE ");
        eb_buf_puts(b, f->name);
        eb_buf_putc(b, ' ');
        eb_buf_puts(b, type_names[f->type]);
        eb_buf_putc(b, '\n');
        if (f->fn) {
            struct eb_series tmp = {0};
            put_sample(b, f, &tmp, "", NULL, NULL, f->fn(f->fn_opaque));
            continue;
        }
        for (const struct eb_series *s = f->series; s; s = s->next) {
            if (f->type == EB_METRIC_HISTOGRAM)
                render_histogram(b, f, s);
            else
                put_sample(b, f, s, "", NULL, NULL, s->value);
        }
    }
}
