/* bench_encode.c -- cost of encoding one event: ns and heap allocations per
 * event for eb_event_encode (each format) and, in the same run, for an
 * equivalent structured encoder built on jansson, the usual library choice.
 *
 *   bench_encode [EVENTS]        (default 2000000)
 *
 * Keys are realistic Laravel cache timers, laravel_cache:ORDER_CONFIRM:<n>,
 * routed with one capture (order_id) as the default config does. Before
 * anything is timed, every key's output is parsed back with jansson and
 * checked field by field, and the two structured encoders must produce the
 * same bytes; a mismatch exits 1, so a fast wrong encoder cannot report.
 *
 * Allocations are counted exactly: the build wraps malloc/calloc/realloc/
 * free for this program and eb_core (-Wl,--wrap, see bench/CMakeLists.txt),
 * and jansson's allocator is set with json_set_alloc_funcs.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/event.h"
#include "core/json.h"

/* ------------------------------------------------------------------------ */
/* Allocation counting                                                       */
/* ------------------------------------------------------------------------ */

/* Counters for the wrapped allocator; a benchmark tool is single-threaded,
 * so plain statics are enough. */
static uint64_t n_allocs;

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

void *__wrap_malloc(size_t n) {
    n_allocs++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t a, size_t b) {
    n_allocs++;
    return __real_calloc(a, b);
}
void *__wrap_realloc(void *p, size_t n) {
    n_allocs++;
    return __real_realloc(p, n);
}
void __wrap_free(void *p) {
    __real_free(p);
}

/* jansson lives in a shared library the wrap does not reach. */
static void *jansson_malloc(size_t n) {
    n_allocs++;
    return __real_malloc(n);
}
static void jansson_free(void *p) {
    __real_free(p);
}

/* ------------------------------------------------------------------------ */
/* Workload                                                                  */
/* ------------------------------------------------------------------------ */

#define NKEYS  65536 /* distinct keys cycled through: larger than L1/L2 */
#define SOURCE "redis://cache-0:6379/0"
#define ROUTE  "order-payment-timeout"
#define PREFIX "laravel_cache:ORDER_CONFIRM:"
#define T0_US  1795491600123456LL

struct workload {
    char keys[NKEYS][48];
    size_t key_len[NKEYS];
    struct eb_capture caps[NKEYS];
};

static struct eb_event make_event(const struct workload *w, uint64_t i, bool recovered) {
    size_t k = i % NKEYS;
    struct eb_event ev = {
        .event = "expired",
        .key = w->keys[k],
        .key_len = w->key_len[k],
        .db = 0,
        .source = SOURCE,
        .route = ROUTE,
        .params = &w->caps[k],
        .nparams = 1,
        .delivery = recovered ? EB_DELIVERY_RECOVERED : EB_DELIVERY_LIVE,
        .time_us = T0_US + (int64_t)i * 7, /* ~140k events/s, like a mass expiry */
        .deadline_ms = recovered ? (T0_US / 1000) - 600000 + (int64_t)k : -1,
    };
    return ev;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* The jansson encoder: same fields, same order, same helpers for id/time    */
/* ------------------------------------------------------------------------ */

struct jansson_enc {
    char *out;
    size_t out_size;
    struct eb_buf scratch; /* time formatting; reused */
};

static const char *fmt_time(struct eb_buf *b, int64_t us, int digits) {
    eb_buf_reset(b);
    eb_buf_put_rfc3339(b, us, digits);
    eb_buf_cstr(b);
    return b->data;
}

static size_t jansson_encode(struct jansson_enc *je, const struct eb_event *ev) {
    char id[33], type[96];
    eb_event_id(ev, id);
    snprintf(type, sizeof(type), "redis.key.%s", ev->event);
    json_t *root = json_object(), *data = json_object(), *params = json_object();
    json_object_set_new(root, "specversion", json_string("1.0"));
    json_object_set_new(root, "type", json_string(type));
    json_object_set_new(root, "source", json_string(ev->source));
    json_object_set_new(root, "id", json_string(id));
    json_object_set_new(root, "time", json_string(fmt_time(&je->scratch, ev->time_us, 6)));
    json_object_set_new(root, "subject", json_stringn(ev->key, ev->key_len));
    json_object_set_new(root, "datacontenttype", json_string("application/json"));
    json_object_set_new(data, "event", json_string(ev->event));
    json_object_set_new(data, "key", json_stringn(ev->key, ev->key_len));
    json_object_set_new(data, "db", json_integer(ev->db));
    json_object_set_new(data, "route", ev->route ? json_string(ev->route) : json_null());
    for (size_t i = 0; i < ev->nparams; i++)
        json_object_set_new(params, ev->params[i].name,
                            json_stringn(ev->params[i].value, ev->params[i].value_len));
    json_object_set_new(data, "params", params);
    json_object_set_new(data, "delivery",
                        json_string(ev->delivery == EB_DELIVERY_RECOVERED ? "recovered" : "live"));
    if (ev->deadline_ms >= 0)
        json_object_set_new(data, "deadline",
                            json_string(fmt_time(&je->scratch, ev->deadline_ms * 1000, 3)));
    json_object_set_new(root, "data", data);
    size_t n = json_dumpb(root, je->out, je->out_size, JSON_COMPACT);
    json_decref(root);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Correctness                                                               */
/* ------------------------------------------------------------------------ */

static int failures;

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "bench_encode: wrong output: " __VA_ARGS__);                           \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static bool str_is(json_t *o, const char *key, const char *want, size_t want_len) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) == want_len &&
           memcmp(json_string_value(v), want, want_len) == 0;
}

/* Parse one structured output back and check every field against ev. */
static void verify_structured(const struct eb_event *ev, const struct eb_encoded *enc) {
    json_error_t err;
    json_t *root = json_loadb(enc->value.data, enc->value.len, JSON_ALLOW_NUL, &err);
    EXPECT(root, "does not parse: %s", err.text);
    if (!root)
        return;
    char id[33], tbuf[64];
    eb_event_id(ev, id);
    struct eb_buf tb = EB_BUF_INIT;
    snprintf(tbuf, sizeof(tbuf), "%s", fmt_time(&tb, ev->time_us, 6));
    json_t *data = json_object_get(root, "data");
    EXPECT(json_object_size(root) == 8, "root has %zu fields", json_object_size(root));
    EXPECT(str_is(root, "specversion", "1.0", 3), "specversion");
    EXPECT(str_is(root, "type", "redis.key.expired", 17), "type");
    EXPECT(str_is(root, "source", SOURCE, strlen(SOURCE)), "source");
    EXPECT(str_is(root, "id", id, 32), "id");
    EXPECT(str_is(root, "time", tbuf, strlen(tbuf)), "time");
    EXPECT(str_is(root, "subject", ev->key, ev->key_len), "subject");
    EXPECT(str_is(root, "datacontenttype", "application/json", 16), "datacontenttype");
    EXPECT(json_is_object(data), "data");
    EXPECT(str_is(data, "event", "expired", 7), "data.event");
    EXPECT(str_is(data, "key", ev->key, ev->key_len), "data.key");
    EXPECT(json_integer_value(json_object_get(data, "db")) == ev->db, "data.db");
    EXPECT(str_is(data, "route", ROUTE, strlen(ROUTE)), "data.route");
    json_t *params = json_object_get(data, "params");
    EXPECT(json_object_size(params) == 1 &&
               str_is(params, "order_id", ev->params[0].value, ev->params[0].value_len),
           "data.params");
    const char *delivery = ev->delivery == EB_DELIVERY_RECOVERED ? "recovered" : "live";
    EXPECT(str_is(data, "delivery", delivery, strlen(delivery)), "data.delivery");
    if (ev->deadline_ms >= 0) {
        snprintf(tbuf, sizeof(tbuf), "%s", fmt_time(&tb, ev->deadline_ms * 1000, 3));
        EXPECT(str_is(data, "deadline", tbuf, strlen(tbuf)), "data.deadline");
    } else {
        EXPECT(!json_object_get(data, "deadline"), "data.deadline present");
    }
    EXPECT(!json_object_get(data, "key_base64") && !json_object_get(data, "payload"),
           "unexpected field");
    eb_buf_free(&tb);
    json_decref(root);
}

/* Every key, both delivery kinds, all formats: parse back, compare. */
static void verify_all(const struct workload *w, struct eb_encoded *enc, struct jansson_enc *je) {
    for (uint64_t i = 0; i < NKEYS && failures < 10; i++) {
        for (int rec = 0; rec < 2; rec++) {
            struct eb_event ev = make_event(w, i, rec);
            EXPECT(eb_event_encode(&ev, EB_FORMAT_CLOUDEVENTS, NULL, 0, enc) == 0, "encode");
            verify_structured(&ev, enc);
            size_t n = jansson_encode(je, &ev);
            EXPECT(n == enc->value.len && memcmp(je->out, enc->value.data, n) == 0,
                   "jansson and eb_event_encode differ:\n  %.*s\n  %.*s", (int)n, je->out,
                   (int)enc->value.len, enc->value.data);
            for (int fmt = 1; fmt < 3; fmt++) {
                EXPECT(eb_event_encode(&ev, (enum eb_event_format)fmt, NULL, 0, enc) == 0,
                       "encode");
                json_t *v = json_loadb(enc->value.data, enc->value.len, 0, NULL);
                EXPECT(v && str_is(v, "key", ev.key, ev.key_len), "format %d data", fmt);
                json_decref(v);
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Timing                                                                    */
/* ------------------------------------------------------------------------ */

struct result {
    double ns;      /* best of the rounds, per event */
    double allocs;  /* per event, over the timed events */
    uint64_t bytes; /* output checksum, so nothing is optimised away */
};

#define ROUNDS 5

/* One encoder under test: encodes ev, returns the bytes it wrote. */
typedef size_t encode_fn(const struct eb_event *ev, void *ctx);

struct ours {
    struct eb_encoded *enc;
    enum eb_event_format fmt;
};

static size_t encode_ours(const struct eb_event *ev, void *ctx) {
    struct ours *o = ctx;
    if (eb_event_encode(ev, o->fmt, NULL, 0, o->enc) != 0)
        abort();
    return o->enc->value.len;
}

static size_t encode_jansson(const struct eb_event *ev, void *ctx) {
    return jansson_encode(ctx, ev);
}

/* Best of ROUNDS in ns per event, and allocations per event over all
 * rounds. Both encoders are called the same way (through encode), so the
 * call itself costs them the same. */
static struct result time_encoder(const struct workload *w, encode_fn *encode, void *ctx,
                                  bool recovered, uint64_t n) {
    struct result r = {1e300, 0, 0};
    uint64_t allocs = 0;
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t a0 = n_allocs;
        double t0 = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            struct eb_event ev = make_event(w, i, recovered);
            r.bytes += encode(&ev, ctx);
        }
        double dt = (now_ns() - t0) / (double)n;
        allocs += n_allocs - a0;
        r.ns = dt < r.ns ? dt : r.ns;
    }
    r.allocs = (double)allocs / ((double)n * ROUNDS);
    return r;
}

static struct result time_ours(const struct workload *w, struct eb_encoded *enc,
                               enum eb_event_format fmt, bool recovered, uint64_t n) {
    struct ours o = {enc, fmt};
    return time_encoder(w, encode_ours, &o, recovered, n);
}

static struct result time_jansson(const struct workload *w, struct jansson_enc *je, bool recovered,
                                  uint64_t n) {
    return time_encoder(w, encode_jansson, je, recovered, n);
}

/* Components of one event, to see where the time goes. */
static double time_component(const struct workload *w, int which, uint64_t n) {
    struct eb_buf b = EB_BUF_INIT;
    char id[33];
    uint64_t sink = 0;
    double best = 1e300;
    for (int round = 0; round < ROUNDS; round++) {
        double t0 = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            struct eb_event ev = make_event(w, i, false);
            if (which == 0) {
                eb_event_id(&ev, id);
                sink += (unsigned char)id[0];
            } else if (which == 1) {
                eb_buf_reset(&b);
                eb_buf_put_rfc3339(&b, ev.time_us, 6);
                sink += b.len;
            } else {
                eb_buf_reset(&b);
                eb_json_string(&b, ev.key, ev.key_len);
                sink += b.len;
            }
        }
        double dt = (now_ns() - t0) / (double)n;
        best = dt < best ? dt : best;
    }
    eb_buf_free(&b);
    if (sink == 42)
        puts("");
    return best;
}

int main(int argc, char **argv) {
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    if (n == 0)
        n = 1;
    json_set_alloc_funcs(jansson_malloc, jansson_free);

    static struct workload w;
    for (size_t k = 0; k < NKEYS; k++) {
        /* Order ids from a realistic range: 6-7 digits. */
        int len = snprintf(w.keys[k], sizeof(w.keys[k]), PREFIX "%zu", 734512 + k * 37);
        w.key_len[k] = (size_t)len;
        w.caps[k] = (struct eb_capture){"order_id", w.keys[k] + strlen(PREFIX),
                                        (size_t)len - strlen(PREFIX)};
    }
    struct eb_encoded enc;
    eb_event_encoded_init(&enc);
    struct jansson_enc je = {malloc(4096), 4096, EB_BUF_INIT};

    verify_all(&w, &enc, &je);
    if (failures) {
        fprintf(stderr, "bench_encode: %d wrong outputs; no numbers reported\n", failures);
        return 1;
    }
    printf("bench_encode: %" PRIu64 " events x %d rounds (best round), %d distinct keys like "
           "%s; outputs of all keys verified\n",
           n, ROUNDS, NKEYS, w.keys[0]);

    /* Warm the buffers: steady state is what the daemon runs in. */
    struct eb_event warm = make_event(&w, 0, true);
    for (int fmt = 0; fmt < 3; fmt++)
        eb_event_encode(&warm, (enum eb_event_format)fmt, NULL, 0, &enc);

    struct result live = time_ours(&w, &enc, EB_FORMAT_CLOUDEVENTS, false, n);
    struct result rec = time_ours(&w, &enc, EB_FORMAT_CLOUDEVENTS, true, n);
    struct result bin = time_ours(&w, &enc, EB_FORMAT_CLOUDEVENTS_BINARY, false, n);
    struct result js = time_ours(&w, &enc, EB_FORMAT_JSON, false, n);
    uint64_t nj = n / 4 ? n / 4 : 1;
    struct result jlive = time_jansson(&w, &je, false, nj);
    struct result jrec = time_jansson(&w, &je, true, nj);

    /* The buffers must still hold a correct event after the timed runs. */
    struct eb_event last = make_event(&w, n - 1, true);
    eb_event_encode(&last, EB_FORMAT_CLOUDEVENTS, NULL, 0, &enc);
    verify_structured(&last, &enc);
    if (failures)
        return 1;

    printf("%-44s %9s %12s\n", "encoder", "ns/event", "allocs/event");
    printf("%-44s %9.1f %12.4f\n", "eb_event_encode cloudevents (live)", live.ns, live.allocs);
    printf("%-44s %9.1f %12.4f\n", "eb_event_encode cloudevents (recovered+deadline)", rec.ns,
           rec.allocs);
    printf("%-44s %9.1f %12.4f\n", "eb_event_encode cloudevents-binary (live)", bin.ns, bin.allocs);
    printf("%-44s %9.1f %12.4f\n", "eb_event_encode json (live)", js.ns, js.allocs);
    printf("%-44s %9.1f %12.4f\n", "jansson cloudevents (live)", jlive.ns, jlive.allocs);
    printf("%-44s %9.1f %12.4f\n", "jansson cloudevents (recovered+deadline)", jrec.ns,
           jrec.allocs);
    printf("components: eb_event_id %.1f ns, json.c eb_buf_put_rfc3339 (the encoder caches the "
           "second) %.1f ns, json.c eb_json_string of the key %.1f ns\n",
           time_component(&w, 0, n), time_component(&w, 1, n), time_component(&w, 2, n));
    printf("ratio jansson/ours: live %.1fx, recovered %.1fx\n", jlive.ns / live.ns,
           jrec.ns / rec.ns);
    printf("RESULT ours_ns=%.1f jansson_ns=%.1f ratio=%.2f ours_allocs=%.4f jansson_allocs=%.2f "
           "checksum=%" PRIu64 "\n",
           live.ns, jlive.ns, jlive.ns / live.ns, live.allocs, jlive.allocs,
           live.bytes + rec.bytes + bin.bytes + js.bytes + jlive.bytes + jrec.bytes);

    eb_buf_free(&je.scratch);
    free(je.out);
    eb_event_encoded_free(&enc);
    return 0;
}
