/* backoff.h -- capped exponential backoff with full jitter for reconnects.
 *
 * Delay n is uniform in [min, min(max, min·2^n)] ("full jitter", as AWS's
 * architecture blog measured it): many bridges that lost the same Redis do
 * not reconnect in lockstep. The state is a plain value struct; the random
 * source is a per-struct xorshift, so there is no global state.
 */
#ifndef EB_BACKOFF_H
#define EB_BACKOFF_H

#include <stdint.h>

struct eb_backoff {
    uint32_t min_ms;
    uint32_t max_ms;
    uint32_t attempt;
    uint64_t rng;
};

/* seed 0 picks one from the clock and address of b. */
void eb_backoff_init(struct eb_backoff *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed);

/* Next delay in ms; advances the attempt counter. */
uint32_t eb_backoff_next(struct eb_backoff *b);

/* Call after a success: the next failure starts from min again. */
void eb_backoff_reset(struct eb_backoff *b);

#endif
