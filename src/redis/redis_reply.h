/* redis_reply.h -- reading a Redis reply: the few questions every client of
 * ours asks of one (is it an error, its text, its integer, is it this
 * word), so code above redis/ reads replies without including hiredis.
 *
 * The reply type is hiredis's redisReply, whose fields used here are the
 * same in hiredis 0.14 and 1.x. Replies are borrowed: valid only inside
 * the callback that received them.
 *
 * @locality any thread: no state.
 */
#ifndef EB_REDIS_REPLY_H
#define EB_REDIS_REPLY_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

static inline bool eb_redis_reply_is_error(const redisReply *r) {
    return r->type == REDIS_REPLY_ERROR;
}

/* The text of an error, status or string reply; "" for other types. */
static inline const char *eb_redis_reply_text(const redisReply *r) {
    return r->str ? r->str : "";
}

/* An integer reply, or a string reply holding a decimal integer (Lua and
 * Functions return numbers either way), in *out. */
static inline bool eb_redis_reply_int(const redisReply *r, long long *out) {
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return true;
    }
    if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < 24) {
        char buf[24], *end;
        memcpy(buf, r->str, r->len);
        buf[r->len] = '\0';
        *out = strtoll(buf, &end, 10);
        return *end == '\0';
    }
    return false;
}

/* True when r is a string or status reply of exactly lit[0..n). */
static inline bool eb_redis_reply_is(const redisReply *r, const char *lit, size_t n) {
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->len == n &&
           memcmp(r->str, lit, n) == 0;
}

/* SENTINEL get-master-addr-by-name's answer, [host, port]: *host points
 * into r (borrowed with it). False for anything else, a nil (the name is
 * not monitored) included. */
static inline bool eb_redis_reply_master_addr(const redisReply *r, const char **host, int *port) {
    long long p;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || !eb_redis_reply_int(r->element[1], &p) ||
        p <= 0 || p > 65535)
        return false;
    *host = r->element[0]->str;
    *port = (int)p;
    return true;
}

/* True when an error reply starts with the error code `code` ("NOAUTH"). */
static inline bool eb_redis_reply_error_is(const redisReply *r, const char *code) {
    return r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, code, strlen(code)) == 0;
}

#endif
