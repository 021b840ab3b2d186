/* redis_client_fixture.c -- a client under test's settings and what it
 * reported (see redis_client_fixture.h). */
#include <stdio.h>

#include <hiredis/hiredis.h>

#include "redis_client_fixture.h"

struct eb_redis_client_conf
eb_fix_client_conf(eb_log_t *log, const struct eb_redis_client_handlers *handlers, void *opaque) {
    return (struct eb_redis_client_conf){
        .name = "test",
        .client_name = "expiry-bridge:test",
        .host = "127.0.0.1",
        .kind = EB_REDIS_CLIENT_COMMANDS,
        .connect_timeout_ms = 2000,
        .reply_timeout_ms = 600,
        .reconnect_min_ms = 20,
        .reconnect_max_ms = 100,
        .log = log,
        .handlers = handlers,
        .opaque = opaque,
    };
}

void eb_fix_client_saw_state(struct eb_fix_client_seen *s, eb_redis_client_t *c,
                             enum eb_redis_client_state st, const struct eb_redis_client_down *d) {
    s->states[st]++;
    if (!d)
        return;
    s->last_down = *d;
    snprintf(s->last_detail, sizeof(s->last_detail), "%s", d->detail);
    s->last_down.detail = s->last_detail;
    s->last_down.what = s->last_down.hint = NULL;
    eb_redis_client_log_down(c, d, NULL);
}

void eb_fix_client_on_reply(const struct redisReply *r, void *seen) {
    struct eb_fix_client_seen *s = seen;
    s->replies++;
    s->reply[0] = '\0';
    if (!r)
        s->nulls++;
    else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
             r->type == REDIS_REPLY_ERROR)
        snprintf(s->reply, sizeof(s->reply), "%s", r->str);
    else if (r->type == REDIS_REPLY_INTEGER)
        snprintf(s->reply, sizeof(s->reply), "%lld", r->integer);
}
