/* log.h -- the consumer's logs: one JSON object per line on stderr, in the
 * bridge's shape, so one log pipeline reads both:
 *   {"ts":"2026-11-24T03:40:01.042Z","level":"info","msg":"order cancelled","order_id":7}
 *
 * Extra fields are given as a jansson pack format and its arguments
 * (https://jansson.readthedocs.io/en/latest/apiref.html#building-values):
 *   oc_log(OC_LOG_WARN, "database error", "{s:s, s:i}", "error", why, "attempt", n);
 * Never log the PostgreSQL conninfo: it may carry a password.
 *
 * @locality any thread: librdkafka's log callback calls it from its own
 * threads. It shares nothing but the level (set once, before any thread
 * starts), and each line is written by one stdio call.
 */
#ifndef OC_LOG_H
#define OC_LOG_H

enum oc_log_level { OC_LOG_DEBUG = 0, OC_LOG_INFO, OC_LOG_WARN, OC_LOG_ERROR };

/* Lines below `level` are dropped (default: OC_LOG_INFO). */
void oc_log_set_level(enum oc_log_level level);

/* Write one line. `fields` is a jansson pack format building an object, or
 * NULL for none; strings passed with it are borrowed for the call. */
void oc_log(enum oc_log_level level, const char *msg, const char *fields, ...);

#endif
