/* backoff.c -- capped exponential backoff with full jitter. */
#include <time.h>

#include "core/backoff.h"

void eb_backoff_init(struct eb_backoff *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed) {
    b->min_ms = min_ms ? min_ms : 1;
    b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
    b->attempt = 0;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)b;
    }
    b->rng = seed ? seed : 0x9E3779B97F4A7C15u;
}

/* xorshift64*: plenty for spreading reconnects, and state-per-struct. */
static uint64_t next_rand(struct eb_backoff *b) {
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return b->rng * 0x2545F4914F6CDD1DULL;
}

uint32_t eb_backoff_next(struct eb_backoff *b) {
    uint64_t ceil = b->min_ms;
    for (uint32_t i = 0; i < b->attempt && ceil < b->max_ms; i++)
        ceil *= 2;
    if (ceil > b->max_ms)
        ceil = b->max_ms;
    if (b->attempt < 64)
        b->attempt++;
    uint64_t span = ceil - b->min_ms + 1;
    return (uint32_t)(b->min_ms + next_rand(b) % span);
}

void eb_backoff_reset(struct eb_backoff *b) {
    b->attempt = 0;
}
