/* resp_same.h -- does the bridge's reply builder (redis_conn.h,
 * eb_redis_reader_*) read a RESP stream exactly as hiredis's own reader
 * does? Header-only, for unit.redis_reply_pool and fuzz.redis_reply.
 *
 * Both readers get the same bytes, cut in two at `split`; after each part
 * every complete reply is taken from both and compared field by field
 * (type, string bytes and terminating NUL, integer, elements; with hiredis
 * 1.x also RESP3's double value and verbatim type), and a
 * protocol error must hit both at the same reply with the same message.
 */
#ifndef EB_TEST_RESP_SAME_H
#define EB_TEST_RESP_SAME_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis/redis_conn.h"

/* hiredis 1.x's reader also reads RESP3 (whatever protocol a connection
 * speaks): aggregates other than arrays, doubles (value and text),
 * booleans, verbatim strings (type and text) and big numbers. */
#if HIREDIS_MAJOR >= 1
#define RESP_IS_AGGREGATE(t)                                                                       \
    ((t) == REDIS_REPLY_ARRAY || (t) == REDIS_REPLY_MAP || (t) == REDIS_REPLY_SET ||              \
     (t) == REDIS_REPLY_PUSH)
#define RESP_IS_INTEGER(t) ((t) == REDIS_REPLY_INTEGER || (t) == REDIS_REPLY_BOOL)
#define RESP_SAME_RESP3(a, b)                                                                      \
    ((a)->type != REDIS_REPLY_DOUBLE || memcmp(&(a)->dval, &(b)->dval, sizeof((a)->dval)) == 0) && \
        ((a)->type != REDIS_REPLY_VERB || memcmp((a)->vtype, (b)->vtype, 4) == 0)
#else
#define RESP_IS_AGGREGATE(t) ((t) == REDIS_REPLY_ARRAY)
#define RESP_IS_INTEGER(t)   ((t) == REDIS_REPLY_INTEGER)
#define RESP_SAME_RESP3(a, b) true
#endif

static bool resp_reply_equal(const redisReply *a, const redisReply *b) {
    if (a->type != b->type)
        return false;
    if (RESP_IS_INTEGER(a->type))
        return a->integer == b->integer;
    if (a->type == REDIS_REPLY_NIL)
        return true;
    if (RESP_IS_AGGREGATE(a->type)) {
        if (a->elements != b->elements)
            return false;
        for (size_t i = 0; i < a->elements; i++) {
            if (!resp_reply_equal(a->element[i], b->element[i]))
                return false;
        }
        return true;
    }
    /* string, status, error; 1.x: double, verbatim, big number */
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0 && b->str[b->len] == '\0' &&
           RESP_SAME_RESP3(a, b);
}

/* Take every complete reply from both; false on any difference. *dead is
 * set when both hit the same protocol error. */
static bool resp_drain_same(redisReader *ref, eb_redis_reader_t *mine, bool *dead) {
    for (;;) {
        void *r1 = NULL;
        const redisReply *r2 = NULL;
        int rc1 = redisReaderGetReply(ref, &r1);
        int rc2 = eb_redis_reader_next(mine, &r2);
        if ((rc1 == REDIS_OK) != (rc2 == 0)) {
            freeReplyObject(r1);
            return false;
        }
        if (rc1 != REDIS_OK) {
            *dead = true;
            return strcmp(ref->errstr, eb_redis_reader_error(mine)) == 0;
        }
        if (!r1 || !r2) {
            freeReplyObject(r1);
            return !r1 && !r2;
        }
        bool same = resp_reply_equal(r1, r2);
        freeReplyObject(r1);
        if (!same)
            return false;
    }
}

/* Arrays announced with more than a million elements make both readers
 * allocate that many pointers up front (16 GB for "*2000000000"): not a
 * difference between them, only an out-of-memory abort under a fuzzer's
 * limits, so such inputs are not compared. */
static bool resp_huge_array(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '*' && p[i] != '%' && p[i] != '~' && p[i] != '>') /* 1.x: RESP3 aggregates */
            continue;
        size_t d = i + 1;
        if (d < n && p[d] == '-')
            continue;
        while (d < n && p[d] >= '0' && p[d] <= '9')
            d++;
        if (d - i - 1 > 6)
            return true;
    }
    return false;
}

/* True when both readers read data[0..n), fed in two parts cut at split,
 * into the same replies. */
static bool resp_same_as_hiredis(const unsigned char *data, size_t n, size_t split) {
    if (split > n)
        split = n;
    if (resp_huge_array(data, n))
        return true;
    redisReader *ref = redisReaderCreate();
    eb_redis_reader_t *mine = eb_redis_reader_new();
    bool same = ref && mine, dead = false;
    const size_t cut[3] = {0, split, n};
    for (int part = 0; same && !dead && part < 2; part++) {
        size_t len = cut[part + 1] - cut[part];
        if (!len)
            continue;
        int rc1 = redisReaderFeed(ref, (const char *)data + cut[part], len);
        int rc2 = eb_redis_reader_feed(mine, data + cut[part], len);
        same = (rc1 == REDIS_OK) == (rc2 == 0) && resp_drain_same(ref, mine, &dead);
    }
    if (ref)
        redisReaderFree(ref);
    eb_redis_reader_free(mine);
    return same;
}

#endif
