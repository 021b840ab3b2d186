/* redis_session.h -- the attempt lifecycle of a Redis client
 * (redis_client.c, its only user; one session per client): a session is
 * given a connect timeout; a failed session is closed once control is back
 * in the event loop, never inside a hiredis callback (redis_conn.h: freeing
 * a context from its own callback corrupts hiredis); then the next session
 * opens after a capped exponential backoff with full jitter (backoff.h).
 *
 * It owns the three libevent timers and the backoff, not the connections:
 * what a session is -- which connections, which handshake, what counts as
 * established, what a failure is logged as -- stays with the owner, which
 * this module calls back:
 *
 *   owner opens a session        eb_redis_session_opening()   timeout runs
 *   every connection is up       eb_redis_session_connected() timeout stops
 *   the handshake is done        eb_redis_session_established()
 *   anything failed              eb_redis_session_condemn()
 *     -> next turn of the loop:  handlers->close(), then unless stopped
 *        eb_redis_session_retry(): handlers->retrying(delay), and after
 *        the delay handlers->open()
 *   the timeout ran out          handlers->timed_out(): the owner condemns
 *
 * Ownership: the handle is owned by whoever called eb_redis_session_new()
 * and freed with eb_redis_session_destroy(). handlers and opaque are
 * borrowed for the handle's life.
 *
 * @locality every function and every callback runs on the loop thread.
 */
#ifndef EB_REDIS_SESSION_H
#define EB_REDIS_SESSION_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct eb_redis_session eb_redis_session_t;

/* Each runs from one of this module's libevent timers, outside hiredis, and
 * may call any eb_redis_session_*() function but destroy. opaque is the one
 * given to eb_redis_session_new(). */
struct eb_redis_session_handlers {
    /* Open the next session (it calls eb_redis_session_opening() once its
     * connections are being made, or eb_redis_session_retry() when not even
     * that was possible). Once per retry delay that ran out. */
    void (*open)(void *opaque);
    /* Close the condemned session's connections: pending replies may run
     * with NULL here. Once per turn of the loop in which the session was
     * condemned, also after eb_redis_session_stop(). */
    void (*close)(void *opaque);
    /* The connect timeout ran out before eb_redis_session_connected().
     * detail ("no connection within N ms") is borrowed until it returns. The
     * owner condemns the session in its own words. */
    void (*timed_out)(const char *detail, void *opaque);
    /* The next session opens in delay_ms (for a log line or a state). May
     * be NULL. */
    void (*retrying)(uint32_t delay_ms, void *opaque);
};

/* A lifecycle on base whose retry delays run from reconnect_min_ms to
 * reconnect_max_ms. Returns the handle (free with eb_redis_session_destroy())
 * or NULL + errstr when out of memory. Nothing is scheduled yet: the owner
 * opens its first session itself. */
eb_redis_session_t *eb_redis_session_new(struct event_base *base, uint32_t reconnect_min_ms,
                                         uint32_t reconnect_max_ms,
                                         const struct eb_redis_session_handlers *handlers,
                                         void *opaque, char *errstr, size_t errstr_size);

/* A session is opening: handlers->timed_out() runs in connect_timeout_ms
 * unless eb_redis_session_connected() comes first. */
void eb_redis_session_opening(eb_redis_session_t *ss, int connect_timeout_ms);

/* Every connection of the session is up: the connect timeout stops. */
void eb_redis_session_connected(eb_redis_session_t *ss);

/* The session did what its owner opened it for: the next failure waits the
 * shortest delay again. */
void eb_redis_session_established(eb_redis_session_t *ss);

/* The session failed: handlers->close() runs once control is back in the
 * loop, then the next session is scheduled (unless stopped). Safe from
 * anywhere, including inside hiredis callbacks; idempotent until then. */
void eb_redis_session_condemn(eb_redis_session_t *ss);

/* Schedule the next session after a backoff delay (handlers->retrying(),
 * then handlers->open()). For an owner that could not open one at all;
 * after a close this module calls it itself. No-op once stopped. */
void eb_redis_session_retry(eb_redis_session_t *ss);

/* No session opens from now on: the retry delay and the connect timeout
 * stop. A condemned session is still closed. */
void eb_redis_session_stop(eb_redis_session_t *ss);

/* NULL is a no-op. Leaves no event registered on the base; no handler runs
 * during or after it. */
void eb_redis_session_destroy(eb_redis_session_t *ss);

#endif
