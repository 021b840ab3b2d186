/* bench_plugin.c -- what a no-op transform costs per event (DESIGN §8:
 * at most 50 ns), against the same pipeline step without plugins, in the
 * same run.
 *
 *   bench_plugin PLUGIN_SO [EVENTS_PER_RUN]
 *
 * Both loops do what bridge/pipeline.c does per event between routing and
 * producing: the baseline renders the Kafka key and encodes the CloudEvent;
 * the plugin loop starts the host's event, runs the route's chain (the
 * no-op transform of examples/plugin, loaded with dlopen like any plugin),
 * takes the key and headers from the host and encodes. Runs alternate
 * (baseline, plugin, baseline, ...) and the medians of 9 runs are compared,
 * so machine noise hits both alike. Every output is checked byte for byte
 * against the baseline's (a fast wrong answer is not a result). Prints
 * ns/event for both and the difference; exit 0 when the difference is
 * within 50 ns, 2 when it is not, 1 when a check failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/event.h"
#include "core/notify.h"
#include "plugin/plugin_host.h"

#define RUNS      9
#define BUDGET_NS 50.0

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct ctx {
    struct eb_config *cfg;
    eb_plugin_set_t *set;
    struct eb_match m;
    struct eb_event ev;
    struct eb_encoded enc;
    struct eb_buf kbuf;
    struct eb_plugin_event pe;
    const struct eb_header *hs;
    size_t nhs;
};

static size_t sink; /* keeps the compiler from dropping the work */

__attribute__((noinline)) static double run_baseline(struct ctx *c, long n) {
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        eb_buf_reset(&c->kbuf);
        eb_router_render_key(c->cfg->router, &c->m, c->ev.key, c->ev.key_len, 0, "expired",
                             &c->kbuf);
        if (eb_event_encode(&c->ev, EB_FORMAT_CLOUDEVENTS, NULL, 0, &c->enc) != 0)
            abort();
        sink += c->enc.value.len + c->kbuf.len;
    }
    return (now_ns() - t0) / (double)n;
}

__attribute__((noinline)) static double run_plugin(struct ctx *c, long n) {
    const eb_plugin_chain_t *chain = eb_plugin_set_chain(c->set, 0);
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        size_t klen, nh;
        eb_plugin_event_begin(&c->pe, &c->ev, "orders", c->cfg->router, &c->m, NULL, 0);
        if (eb_plugin_chain_run(chain, &c->pe) != EB_PLUGIN_RUN_CONTINUE)
            abort();
        const struct eb_header *hs = eb_plugin_event_headers(&c->pe, &nh);
        const void *key = eb_plugin_event_key(&c->pe, &klen);
        if (eb_event_encode(&c->pe.ev, EB_FORMAT_CLOUDEVENTS, hs, nh, &c->enc) != 0)
            abort();
        sink += c->enc.value.len + klen + (key != NULL);
    }
    return (now_ns() - t0) / (double)n;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_plugin PLUGIN_SO [EVENTS_PER_RUN]\n");
        return 1;
    }
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    char yaml[2048], err[4096];
    snprintf(yaml, sizeof(yaml),
             "redis: { url: redis://localhost }\nkafka: { brokers: localhost:9092 }\n"
             "plugins:\n  - name: noop\n    path: %s\nroutes:\n  - name: orders\n"
             "    match: \"laravel_cache:ORDER_CONFIRM:{order_id}\"\n    topic: orders\n"
             "    key: \"{order_id}\"\n    plugins: [noop]\n",
             argv[1]);
    eb_plugin_loader_t *loader = eb_plugin_loader_new(NULL, NULL, NULL);
    struct eb_config_checks checks = {.plugins = eb_plugin_loader_check_config,
                                      .plugins_opaque = loader};
    struct ctx c = {0};
    if (eb_config_load_string(yaml, strlen(yaml), "bench", &checks, &c.cfg, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (!(c.set = eb_plugin_set_new(loader, c.cfg, NULL, err, sizeof(err)))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const char *key = "laravel_cache:ORDER_CONFIRM:123456";
    if (!eb_router_match(c.cfg->router, key, strlen(key), EB_EVENT_EXPIRED_ID, &c.m))
        return 1;
    c.ev = (struct eb_event){.event = "expired", .key = key, .key_len = strlen(key),
                             .source = "redis://cache-0:6379/0", .route = "orders",
                             .params = c.m.caps, .nparams = c.m.ncaps,
                             .time_us = 1795000000123456, .deadline_ms = -1};
    eb_event_encoded_init(&c.enc);
    eb_plugin_event_init(&c.pe);

    /* Correctness: the same bytes and key either way. */
    run_baseline(&c, 1);
    char *want = strdup(c.enc.value.data);
    char *want_key = strndup(c.kbuf.data, c.kbuf.len);
    run_plugin(&c, 1);
    size_t klen;
    const char *got_key = eb_plugin_event_key(&c.pe, &klen);
    if (strcmp(want, c.enc.value.data) != 0 || klen != strlen(want_key) ||
        memcmp(got_key, want_key, klen) != 0) {
        fprintf(stderr, "the plugin path changed the event:\n%s\n%s\n", want, c.enc.value.data);
        return 1;
    }

    double base[RUNS], plug[RUNS], diff[RUNS];
    run_baseline(&c, n / 10); /* warm caches and branch predictors */
    run_plugin(&c, n / 10);
    for (int r = 0; r < RUNS; r++) {
        base[r] = run_baseline(&c, n);
        plug[r] = run_plugin(&c, n);
        diff[r] = plug[r] - base[r];
    }
    qsort(base, RUNS, sizeof(double), cmp);
    qsort(plug, RUNS, sizeof(double), cmp);
    qsort(diff, RUNS, sizeof(double), cmp);
    printf("{\"events_per_run\":%ld,\"runs\":%d,\"baseline_ns\":%.1f,\"noop_plugin_ns\":%.1f,"
           "\"plugin_cost_ns\":%.1f,\"budget_ns\":%.0f}\n",
           n, RUNS, base[RUNS / 2], plug[RUNS / 2], diff[RUNS / 2], BUDGET_NS);
    fprintf(stderr, "sink %zu\n", sink);
    free(want);
    free(want_key);
    eb_plugin_event_free(&c.pe);
    eb_event_encoded_free(&c.enc);
    eb_buf_free(&c.kbuf);
    eb_plugin_set_destroy(c.set);
    eb_config_free(c.cfg);
    eb_plugin_loader_destroy(loader);
    return diff[RUNS / 2] <= BUDGET_NS ? 0 : 2;
}
