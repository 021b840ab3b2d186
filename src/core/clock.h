/* clock.h -- the clock readings the bridge's modules count in, and the
 * libevent timeval of a duration in milliseconds.
 *
 * Monotonic readings measure durations (latency, timeouts, gaps) and never
 * jump; wall-clock readings are for what is compared with Redis deadlines
 * and shown to people. Header-only so each reading stays one inlined
 * clock_gettime() on the hot path.
 *
 * @locality any thread: no state.
 */
#ifndef EB_CLOCK_H
#define EB_CLOCK_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

static inline int64_t eb_timespec_ns(const struct timespec *ts) {
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t eb_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return eb_timespec_ns(&ts);
}

/* CLOCK_MONOTONIC in milliseconds. */
static inline int64_t eb_mono_ms(void) {
    return eb_mono_ns() / 1000000;
}

/* CLOCK_REALTIME in nanoseconds since the Unix epoch. */
static inline int64_t eb_real_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return eb_timespec_ns(&ts);
}

/* CLOCK_REALTIME in microseconds since the Unix epoch. */
static inline int64_t eb_real_us(void) {
    return eb_real_ns() / 1000;
}

/* CLOCK_REALTIME in milliseconds since the Unix epoch (Redis's unit for
 * deadlines: PEXPIRETIME, the ledger's scores). */
static inline int64_t eb_real_ms(void) {
    return eb_real_ns() / 1000000;
}

/* CLOCK_REALTIME in seconds since the Unix epoch, for a gauge. */
static inline double eb_real_s(void) {
    return (double)eb_real_ns() / 1e9;
}

/* A duration of ms milliseconds (>= 0) as libevent's timers take it. */
static inline struct timeval eb_ms_tv(int64_t ms) {
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

#endif
