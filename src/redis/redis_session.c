/* redis_session.c -- connect timeout, deferred close, reconnect with backoff
 * for a Redis client's sessions (contract in redis_session.h). Three
 * libevent timers; no hiredis in here. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/error.h"
#include "redis/redis_session.h"

struct eb_redis_session {
    const struct eb_redis_session_handlers *h; /* borrowed */
    void *opaque;                              /* borrowed */
    struct event *ev_connect;                  /* the opening session's connect timeout */
    struct event *ev_close; /* zero timeout: close a condemned session outside hiredis */
    struct event *ev_retry; /* the backoff delay before the next session */
    struct eb_backoff backoff;
    int connect_timeout_ms; /* of the opening session, for the timeout's detail */
    bool stopped;
};

/* @locality loop thread (libevent timer). */
static void on_connect_timeout(evutil_socket_t fd, short what, void *arg) {
    eb_redis_session_t *ss = arg;
    char detail[64];
    snprintf(detail, sizeof(detail), "no connection within %d ms", ss->connect_timeout_ms);
    ss->h->timed_out(detail, ss->opaque);
}

/* @locality loop thread (libevent timer, outside hiredis). */
static void on_close(evutil_socket_t fd, short what, void *arg) {
    eb_redis_session_t *ss = arg;
    evtimer_del(ss->ev_connect);
    ss->h->close(ss->opaque);
    if (!ss->stopped)
        eb_redis_session_retry(ss);
}

/* @locality loop thread (libevent timer). */
static void on_retry(evutil_socket_t fd, short what, void *arg) {
    eb_redis_session_t *ss = arg;
    ss->h->open(ss->opaque);
}

eb_redis_session_t *eb_redis_session_new(struct event_base *base, uint32_t reconnect_min_ms,
                                         uint32_t reconnect_max_ms,
                                         const struct eb_redis_session_handlers *handlers,
                                         void *opaque, char *errstr, size_t errstr_size) {
    eb_redis_session_t *ss = calloc(1, sizeof(*ss));
    if (!ss) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    ss->h = handlers;
    ss->opaque = opaque;
    eb_backoff_init(&ss->backoff, reconnect_min_ms, reconnect_max_ms, 0);
    ss->ev_connect = evtimer_new(base, on_connect_timeout, ss);
    ss->ev_close = evtimer_new(base, on_close, ss);
    ss->ev_retry = evtimer_new(base, on_retry, ss);
    if (!ss->ev_connect || !ss->ev_close || !ss->ev_retry) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        eb_redis_session_destroy(ss);
        return NULL;
    }
    return ss;
}

void eb_redis_session_opening(eb_redis_session_t *ss, int connect_timeout_ms) {
    struct timeval tv = eb_ms_tv(connect_timeout_ms);
    ss->connect_timeout_ms = connect_timeout_ms;
    evtimer_add(ss->ev_connect, &tv);
}

void eb_redis_session_connected(eb_redis_session_t *ss) {
    evtimer_del(ss->ev_connect);
}

void eb_redis_session_established(eb_redis_session_t *ss) {
    eb_backoff_reset(&ss->backoff);
}

void eb_redis_session_condemn(eb_redis_session_t *ss) {
    static const struct timeval zero = {0, 0};
    evtimer_add(ss->ev_close, &zero);
}

void eb_redis_session_retry(eb_redis_session_t *ss) {
    if (ss->stopped)
        return;
    uint32_t delay = eb_backoff_next(&ss->backoff);
    struct timeval tv = eb_ms_tv(delay);
    evtimer_add(ss->ev_retry, &tv);
    if (ss->h->retrying)
        ss->h->retrying(delay, ss->opaque);
}

void eb_redis_session_stop(eb_redis_session_t *ss) {
    ss->stopped = true;
    evtimer_del(ss->ev_retry);
    evtimer_del(ss->ev_connect);
}

void eb_redis_session_destroy(eb_redis_session_t *ss) {
    if (!ss)
        return;
    if (ss->ev_connect)
        event_free(ss->ev_connect);
    if (ss->ev_close)
        event_free(ss->ev_close);
    if (ss->ev_retry)
        event_free(ss->ev_retry);
    free(ss);
}
