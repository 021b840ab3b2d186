/* bench_router.c -- lookup cost of the router at 10 and at 10,000 routes.
 *
 *   bench_router [LOOKUPS_PER_RUN]
 *
 * Builds two routers whose routes have the same shape
 * ("svcS:kindK:tenantT:{id}", plus a catch-all "svcS:*" per service), looks
 * up a fixed mix of keys (3/4 hits spread over all routes, 1/4 misses that
 * fall back to the catch-all or match nothing), checks every result against
 * the route the key was made for (abort on a wrong answer: a fast wrong
 * router is not a result), and prints the median ns/lookup of several runs
 * for both sizes and their ratio. The router's contract is that lookup cost
 * depends on the key, not on the route count: the ratio that remains comes
 * from cache misses (keys spread over 10,000 routes touch megabytes) and a
 * few more trie levels, which the third line separates out.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/notify.h"
#include "core/router.h"

#define RUNS  7
#define NKEYS 4096

struct table {
    struct eb_router_rule *rules;
    char (*patterns)[64];
    char (*names)[32];
    size_t n;
    eb_router_t *router;
};

struct keyset {
    char (*keys)[80];
    size_t *lens;
    long *expect; /* rule index, or -1 for no route */
};

/* Routes 0..n-1 are "svc{i%16}:kind{i%7}:tenant{i}:{id}"; routes n..n+15
 * are the per-service catch-alls "svc{s}:*" (taking only expired). */
static void table_build(struct table *t, size_t n) {
    size_t total = n + 16;
    t->n = total;
    t->rules = calloc(total, sizeof(*t->rules));
    t->patterns = calloc(total, sizeof(*t->patterns));
    t->names = calloc(total, sizeof(*t->names));
    if (!t->rules || !t->patterns || !t->names)
        abort();
    for (size_t i = 0; i < total; i++) {
        if (i < n)
            snprintf(t->patterns[i], sizeof(t->patterns[i]), "svc%zu:kind%zu:tenant%zu:{id}",
                     i % 16, i % 7, i);
        else
            snprintf(t->patterns[i], sizeof(t->patterns[i]), "svc%zu:*", i - n);
        snprintf(t->names[i], sizeof(t->names[i]), "route-%zu", i);
        t->rules[i] = (struct eb_router_rule){t->names[i], t->patterns[i], NULL,
                                              UINT64_C(1) << EB_EVENT_EXPIRED_ID, NULL};
    }
    char err[512];
    size_t bad;
    t->router = eb_router_new(t->rules, total, &bad, err, sizeof(err));
    if (!t->router) {
        fprintf(stderr, "eb_router_new: %s\n", err);
        abort();
    }
}

static void table_free(struct table *t) {
    eb_router_destroy(t->router);
    free(t->rules);
    free(t->patterns);
    free(t->names);
}

/* A deterministic mix (fixed LCG seed) so runs are comparable, over the
 * first `spread` routes of a table of n. */
static void keys_build(struct keyset *ks, size_t n, size_t spread) {
    ks->keys = calloc(NKEYS, sizeof(*ks->keys));
    ks->lens = calloc(NKEYS, sizeof(*ks->lens));
    ks->expect = calloc(NKEYS, sizeof(*ks->expect));
    if (!ks->keys || !ks->lens || !ks->expect)
        abort();
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (size_t k = 0; k < NKEYS; k++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        size_t i = (size_t)(x >> 33) % spread, id = (size_t)(x >> 13) % 1000000;
        int n_;
        switch (k % 4) {
        case 3:
            if (k % 8 == 3) { /* a miss that falls back to the catch-all */
                n_ = snprintf(ks->keys[k], sizeof(ks->keys[k]), "svc%zu:kind%zu:tenant%zu", i % 16,
                              i % 7, i);
                ks->expect[k] = (long)(n + i % 16);
            } else { /* no route at all */
                n_ = snprintf(ks->keys[k], sizeof(ks->keys[k]), "other:kind%zu:tenant%zu:%zu",
                              i % 7, i, id);
                ks->expect[k] = -1;
            }
            break;
        default:
            n_ = snprintf(ks->keys[k], sizeof(ks->keys[k]), "svc%zu:kind%zu:tenant%zu:%zu", i % 16,
                          i % 7, i, id);
            ks->expect[k] = (long)i;
        }
        ks->lens[k] = (size_t)n_;
    }
}

static void keys_free(struct keyset *ks) {
    free(ks->keys);
    free(ks->lens);
    free(ks->expect);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One timed run: `lookups` lookups cycling through the key mix, each
 * checked. Returns ns per lookup. */
static double run_once(const struct table *t, const struct keyset *ks, size_t lookups) {
    struct eb_match m;
    double t0 = now_ns();
    for (size_t q = 0; q < lookups; q++) {
        size_t k = q % NKEYS;
        bool hit = eb_router_match(t->router, ks->keys[k], ks->lens[k], EB_EVENT_EXPIRED_ID, &m);
        long got = hit ? (long)m.rule : -1;
        if (got != ks->expect[k]) {
            fprintf(stderr, "wrong route for '%s': got %ld, expected %ld\n", ks->keys[k], got,
                    ks->expect[k]);
            abort();
        }
    }
    return (now_ns() - t0) / (double)lookups;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_ns(size_t nroutes, size_t spread, size_t lookups) {
    struct table t;
    struct keyset ks;
    double v[RUNS];
    table_build(&t, nroutes);
    keys_build(&ks, nroutes, spread);
    run_once(&t, &ks, NKEYS); /* warm caches */
    for (int i = 0; i < RUNS; i++)
        v[i] = run_once(&t, &ks, lookups);
    qsort(v, RUNS, sizeof(v[0]), cmp_double);
    keys_free(&ks);
    table_free(&t);
    return v[RUNS / 2];
}

int main(int argc, char **argv) {
    size_t lookups = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
    if (lookups == 0)
        lookups = 1;
    double small = median_ns(10, 10, lookups);
    double large = median_ns(10000, 10000, lookups);
    double hot = median_ns(10000, 10, lookups);
    printf("router lookup, median of %d runs of %zu lookups (3/4 hits, 1/4 misses):\n", RUNS,
           lookups);
    printf("  10 routes:     %8.1f ns/lookup\n", small);
    printf("  10000 routes:  %8.1f ns/lookup\n", large);
    printf("  ratio 10000/10: %.2f\n", large / small);
    /* Same table, keys of 10 routes only: what remains of the ratio is the
     * deeper trie path, not cache misses over a 10,000-route working set. */
    printf("  10000 routes, keys of 10 of them: %.1f ns/lookup (ratio %.2f)\n", hot, hot / small);
    return 0;
}
