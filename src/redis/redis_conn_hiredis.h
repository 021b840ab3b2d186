/* redis_conn_hiredis.h -- the one place where the hiredis headers of 0.14
 * (Debian 12) and 1.x (Debian 13: 1.2) differ for redis_conn.c's reply
 * pool, so that redis_conn.c's bodies carry no #if (STYLE.md rule 21).
 * Private to redis_conn.c; nothing here is part of redis_conn.h.
 *
 * What differs, from hiredis's read.h and read.c of both versions:
 *  - redisReplyObjectFunctions: 0.14 has five builders; 1.x's reader also
 *    parses RESP3 (whatever protocol the connection speaks) and has seven:
 *    createDouble and createBool in between. A slot left NULL is not
 *    skipped: 1.x's reader then hands out the reply type cast to a pointer
 *    (read.c: obj = (void*)REDIS_REPLY_DOUBLE) as the reply, which the
 *    pool's freeObject would take for one of its roots. 1.x builds
 *    therefore fill every slot; EB_REDIS_CONN_REPLY_FNS() names all seven
 *    and drops the two 0.14 has no slot for.
 *  - createArray's element count is int in 0.14, size_t in 1.x (where a
 *    RESP3 map announces twice its pair count).
 *  - 1.x's redisReply has dval (a RESP3 double's value, next to its text
 *    in str) and vtype (a verbatim string's three-letter type, the four
 *    bytes "txt:" taken off str); 0.14's has neither field, and none of
 *    the RESP3 type numbers.
 * The two RESP3-only builders are compiled in both builds (so 0.14 checks
 * they still compile) and marked EB_REDIS_CONN_RESP3_ONLY: unused in 0.14.
 */
#ifndef EB_REDIS_CONN_HIREDIS_H
#define EB_REDIS_CONN_HIREDIS_H

#include <string.h>

#include <hiredis/hiredis.h>

#define EB_REDIS_CONN_RESP3_ONLY __attribute__((unused))

#if HIREDIS_MAJOR >= 1

typedef size_t eb_redis_conn_elements_t;

#define EB_REDIS_CONN_REPLY_DOUBLE REDIS_REPLY_DOUBLE
#define EB_REDIS_CONN_REPLY_BOOL   REDIS_REPLY_BOOL
#define EB_REDIS_CONN_REPLY_VERB   REDIS_REPLY_VERB

#define EB_REDIS_CONN_SET_DVAL(r, v) ((r)->dval = (v))
#define EB_REDIS_CONN_SET_VTYPE(r, s)                                                              \
    do {                                                                                           \
        memcpy((r)->vtype, (s), 3);                                                                \
        (r)->vtype[3] = '\0';                                                                      \
    } while (0)

#define EB_REDIS_CONN_REPLY_FNS(string, array, integer, dbl, nil, boolean, free_object)           \
    {                                                                                              \
        .createString = (string), .createArray = (array), .createInteger = (integer),              \
        .createDouble = (dbl), .createNil = (nil), .createBool = (boolean),                        \
        .freeObject = (free_object),                                                               \
    }

#else /* hiredis 0.14 */

typedef int eb_redis_conn_elements_t;

/* No such replies in 0.14 (its reader refuses RESP3's type bytes): values
 * no reply type has, so the comparisons that use them never hold. */
#define EB_REDIS_CONN_REPLY_DOUBLE (-2)
#define EB_REDIS_CONN_REPLY_BOOL   (-3)
#define EB_REDIS_CONN_REPLY_VERB   (-4)

#define EB_REDIS_CONN_SET_DVAL(r, v) ((void)(r), (void)(v))
#define EB_REDIS_CONN_SET_VTYPE(r, s) ((void)(r), (void)(s))

#define EB_REDIS_CONN_REPLY_FNS(string, array, integer, dbl, nil, boolean, free_object)           \
    {                                                                                              \
        .createString = (string), .createArray = (array), .createInteger = (integer),              \
        .createNil = (nil), .freeObject = (free_object),                                           \
    }

#endif

#endif
