/* redis_client_fixture.h -- an eb_redis_client under test (redis_client.h)
 * as the integration tests drive it: the settings they start from, and
 * what it reported -- each state change, the last failure (copied, since
 * its strings live only during the callback, and logged as the daemon
 * logs it) and the replies to the test's commands.
 *
 * Test-only code. @locality the loop thread, like the client itself.
 */
#ifndef EB_TEST_REDIS_CLIENT_FIXTURE_H
#define EB_TEST_REDIS_CLIENT_FIXTURE_H

#include "core/log.h"
#include "redis/redis_client.h"

struct redisReply;

/* Zero it before use; a plain value. */
struct eb_fix_client_seen {
    int states[5];                         /* state changes, per state */
    struct eb_redis_client_down last_down; /* detail: last_detail; what, hint: NULL */
    char last_detail[256];
    int replies; /* replies seen, NULL ones (connection lost) included */
    int nulls;
    char reply[128]; /* the last reply's string, status, error or integer; else "" */
};

/* The settings the tests start from: a commands connection "test" named
 * "expiry-bridge:test" to 127.0.0.1 (port left 0), with timeouts short
 * enough for a test (connect 2 s, reply 600 ms, reconnect 20..100 ms).
 * log, handlers and opaque are borrowed, as the client borrows them. */
struct eb_redis_client_conf
eb_fix_client_conf(eb_log_t *log, const struct eb_redis_client_handlers *handlers, void *opaque);

/* Record a state change (call it from the test's on_state handler); a
 * failure d is also logged with eb_redis_client_log_down(). */
void eb_fix_client_saw_state(struct eb_fix_client_seen *s, eb_redis_client_t *c,
                             enum eb_redis_client_state st, const struct eb_redis_client_down *d);

/* A reply callback for eb_redis_client_command() that records the reply
 * in seen (the opaque, a struct eb_fix_client_seen); NULL: the connection
 * was lost before it came. */
void eb_fix_client_on_reply(const struct redisReply *r, void *seen);

#endif
