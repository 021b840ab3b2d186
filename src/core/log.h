/* log.h -- structured logs: one JSON object per line on a file descriptor
 * (stderr in the daemon), e.g.
 *   {"ts":"2026-11-24T03:40:00.123Z","level":"warn","msg":"redis gap","gap_ms":1520}
 *
 * Secrets never reach the output: fields whose name says password, secret,
 * token or credential are written as "[redacted]", and eb_log_redact_url()
 * strips the password from a redis:// URL before it is logged.
 *
 * @locality any thread: a handle holds only its fd and an atomic level, and
 * each line is one write(2), so librdkafka's threads may log through it.
 */
#ifndef EB_LOG_H
#define EB_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eb_log eb_log_t;

enum eb_log_level { EB_LOG_DEBUG = 0, EB_LOG_INFO, EB_LOG_WARN, EB_LOG_ERROR };

enum eb_log_ftype { EB_LF_STR, EB_LF_BYTES, EB_LF_INT, EB_LF_DBL, EB_LF_BOOL };

/* One key/value of a log line. Built with the eb_lf_*() helpers; every
 * pointer is borrowed for the duration of the eb_log_write() call. */
struct eb_log_field {
    const char *key;
    enum eb_log_ftype type;
    const void *s; /* EB_LF_STR (NUL-terminated) or EB_LF_BYTES (len bytes) */
    size_t len;
    int64_t i;
    double d;
};

static inline struct eb_log_field eb_lf_str(const char *key, const char *s) {
    struct eb_log_field f = {key, EB_LF_STR, s, 0, 0, 0};
    return f;
}
/* Arbitrary bytes (a Redis key): escaped, and cut at 256 bytes with the
 * full length noted, so one huge key cannot flood the log. */
static inline struct eb_log_field eb_lf_bytes(const char *key, const void *p, size_t len) {
    struct eb_log_field f = {key, EB_LF_BYTES, p, len, 0, 0};
    return f;
}
static inline struct eb_log_field eb_lf_int(const char *key, int64_t v) {
    struct eb_log_field f = {key, EB_LF_INT, NULL, 0, v, 0};
    return f;
}
static inline struct eb_log_field eb_lf_dbl(const char *key, double v) {
    struct eb_log_field f = {key, EB_LF_DBL, NULL, 0, 0, v};
    return f;
}
static inline struct eb_log_field eb_lf_bool(const char *key, bool v) {
    struct eb_log_field f = {key, EB_LF_BOOL, NULL, 0, v, 0};
    return f;
}

/* Create a logger writing to fd (not owned: never closed). Lines below
 * `level` are discarded. Returns NULL only when out of memory. Free with
 * eb_log_destroy(). */
eb_log_t *eb_log_new(int fd, enum eb_log_level level);

/* NULL is a no-op. */
void eb_log_destroy(eb_log_t *lg);

void eb_log_set_level(eb_log_t *lg, enum eb_log_level level);
bool eb_log_enabled(const eb_log_t *lg, enum eb_log_level level);

/* Parse "debug", "info", "warn"/"warning", "error". Returns false if unknown. */
bool eb_log_level_parse(const char *s, enum eb_log_level *out);

/* Write one line. lg may be NULL (nothing is written). */
void eb_log_write(eb_log_t *lg, enum eb_log_level level, const char *msg,
                  const struct eb_log_field *fields, size_t nfields);

/* eb_log(lg, EB_LOG_WARN, "redis gap", eb_lf_int("gap_ms", ms), ...) */
#define eb_log(lg, level, msg, ...)                                                                \
    eb_log_write((lg), (level), (msg), (const struct eb_log_field[]){{0}, ##__VA_ARGS__} + 1,      \
                 sizeof((const struct eb_log_field[]){{0}, ##__VA_ARGS__}) /                       \
                         sizeof(struct eb_log_field) -                                             \
                     1)

/* Rate limit for lines that could otherwise repeat per event (queue full,
 * delivery failures): at most one line per interval. A plain value struct
 * owned by whoever logs; zero-initialise it. */
struct eb_log_limit {
    int64_t next_ms;     /* CLOCK_MONOTONIC ms before which lines are held back */
    uint64_t suppressed; /* lines held back since the last one written */
};

/* True when a line may be written now; then *suppressed (if not NULL)
 * receives how many were held back since the previous one, and the window
 * restarts. False (and the line is counted as held back) otherwise. */
bool eb_log_limit_allow(struct eb_log_limit *l, int interval_ms, uint64_t *suppressed);

/* Copy url into out with any password replaced by "***"
 * ("redis://app:s3cret@h:6379" -> "redis://app:***@h:6379"). Always
 * NUL-terminates when out_size > 0; truncates to fit. */
void eb_log_redact_url(const char *url, char *out, size_t out_size);

/* True when a field or property name looks like it holds a secret. */
bool eb_log_is_secret_name(const char *name);

#endif
