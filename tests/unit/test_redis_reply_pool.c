/* test_redis_reply_pool.c -- replies of a Redis connection are built in a
 * pool (redis_conn.h): the same trees as hiredis's own reader, whole and at
 * every split point of the stream, and the pool's memory reused from one
 * reply to the next instead of allocated per reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "../support/resp_same.h"

/* Compared with hiredis at every split point of the stream. */
static void assert_same_at_every_split(const char *s, size_t n) {
    for (size_t split = 0; split <= n; split++) {
        if (!resp_same_as_hiredis((const unsigned char *)s, n, split))
            fail_msg("differs from hiredis when cut at byte %zu of %zu", split, n);
    }
}
#define SAME(lit) assert_same_at_every_split((lit), sizeof(lit) - 1)

static void test_reply_pool_reads_pub_sub_messages_as_hiredis(void **state) {
    SAME("*4\r\n$8\r\npmessage\r\n$22\r\n__keyevent@*__:expired\r\n$22\r\n__keyevent@0__:expired"
         "\r\n$30\r\nlaravel_cache:ORDER_CONFIRM:71\r\n"
         "*3\r\n$7\r\nmessage\r\n$3\r\nabc\r\n$0\r\n\r\n"
         "*3\r\n$10\r\npsubscribe\r\n$22\r\n__keyevent@*__:expired\r\n:1\r\n");
}

static void test_reply_pool_reads_every_type_as_hiredis(void **state) {
    SAME("+OK\r\n-ERR no such key\r\n:0\r\n:-9223372036854775808\r\n$-1\r\n*-1\r\n*0\r\n"
         "$5\r\na\0b\r\n\r\n*3\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n*0\r\n");
}

static void test_reply_pool_reports_protocol_errors_as_hiredis(void **state) {
    SAME("*2\r\n$1\r\na\r\n?oops\r\n");
    SAME(":12x\r\n");
    SAME("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"); /* deeper than hiredis 0.14 allows */
}

/* How many replies the bridge's reader takes from data[0..n) before the
 * stream ends or a protocol error stops it. */
static int resp_count_replies(const char *data, size_t n) {
    eb_redis_reader_t *rd = eb_redis_reader_new();
    int count = 0;
    const redisReply *r = NULL;
    if (rd && eb_redis_reader_feed(rd, data, n) == 0) {
        while (eb_redis_reader_next(rd, &r) == 0 && r)
            count++;
    }
    eb_redis_reader_free(rd);
    return count;
}

/* hiredis 1.x's reader reads RESP3 whatever the connection speaks, and
 * calls builders 0.14 has no slot for (createDouble, createBool): the pool
 * builds those replies as hiredis does (a missing builder would hand out
 * the type number as a reply pointer). 0.14 refuses the same bytes, and
 * the two readers must refuse them alike. */
static void test_reply_pool_reads_resp3_as_hiredis_does(void **state) {
    static const char resp3[] = ",3.14\r\n,-inf\r\n#t\r\n#f\r\n_\r\n"
                                "%2\r\n+a\r\n:1\r\n$1\r\nb\r\n,2.5\r\n"
                                "~2\r\n#t\r\n(12345678901234567890123\r\n"
                                ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nk\r\n"
                                "=15\r\ntxt:Some string\r\n*2\r\n=8\r\nmkd:# hi\r\n_\r\n";
    SAME(resp3);
    assert_int_equal(resp_count_replies(resp3, sizeof(resp3) - 1), HIREDIS_MAJOR >= 1 ? 10 : 0);
}

/* Replies larger than the pool's first chunk chain more chunks. */
static void test_reply_pool_reads_replies_larger_than_a_chunk(void **state) {
    size_t n = 0, cap = 64 * 1024;
    char *s = malloc(cap);
    assert_non_null(s);
    n += (size_t)snprintf(s + n, cap - n, "*3\r\n$9000\r\n");
    memset(s + n, 'v', 9000);
    n += 9000;
    n += (size_t)snprintf(s + n, cap - n, "\r\n:7\r\n*700\r\n");
    for (int i = 0; i < 700; i++)
        n += (size_t)snprintf(s + n, cap - n, "$9\r\nkey%06d\r\n", i);
    assert_true(resp_same_as_hiredis((unsigned char *)s, n, n));
    for (size_t split = 1; split < n; split += 97)
        assert_true(resp_same_as_hiredis((unsigned char *)s, n, split));
    free(s);
}

/* The point of the pool: message after message lands in the same memory. */
static void test_reply_pool_reuses_its_memory_for_each_reply(void **state) {
    static const char msg[] = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nkey\r\n";
    eb_redis_reader_t *rd = eb_redis_reader_new();
    assert_non_null(rd);
    const redisReply *first = NULL;
    for (int i = 0; i < 1000; i++) {
        const redisReply *r = NULL;
        assert_int_equal(eb_redis_reader_feed(rd, msg, sizeof(msg) - 1), 0);
        assert_int_equal(eb_redis_reader_next(rd, &r), 0);
        assert_non_null(r);
        assert_int_equal(r->elements, 3);
        assert_memory_equal(r->element[2]->str, "key", 4);
        if (!first)
            first = r;
        assert_ptr_equal(r, first);
    }
    eb_redis_reader_free(rd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_pool_reads_pub_sub_messages_as_hiredis),
        cmocka_unit_test(test_reply_pool_reads_every_type_as_hiredis),
        cmocka_unit_test(test_reply_pool_reports_protocol_errors_as_hiredis),
        cmocka_unit_test(test_reply_pool_reads_resp3_as_hiredis_does),
        cmocka_unit_test(test_reply_pool_reads_replies_larger_than_a_chunk),
        cmocka_unit_test(test_reply_pool_reuses_its_memory_for_each_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
