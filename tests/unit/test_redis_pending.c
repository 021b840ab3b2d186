/* test_redis_pending.c -- the FIFO of requests awaiting a Redis reply:
 * order, removal at the head and elsewhere, the tail kept right for the
 * next push, popping everything left, and which request is overdue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "redis/redis_pending.h"

struct req {
    struct eb_pending link;
    int id;
};

static int pop_id(struct eb_pending_queue *q) {
    struct req *r = (struct req *)eb_redis_pending_pop(q);
    return r ? r->id : -1;
}

static void test_pending_pops_in_the_order_pushed(void **state) {
    struct eb_pending_queue q = EB_PENDING_QUEUE_INIT;
    struct req a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    eb_redis_pending_push(&q, &a.link, 10);
    eb_redis_pending_push(&q, &b.link, 20);
    eb_redis_pending_push(&q, &c.link, 30);
    assert_int_equal(pop_id(&q), 1);
    assert_int_equal(pop_id(&q), 2);
    assert_int_equal(pop_id(&q), 3);
    assert_int_equal(pop_id(&q), -1);
    assert_null(q.head);
    assert_null(q.tail);
}

static void test_pending_remove_of_the_oldest_leaves_the_rest(void **state) {
    struct eb_pending_queue q = EB_PENDING_QUEUE_INIT;
    struct req a = {.id = 1}, b = {.id = 2};
    eb_redis_pending_push(&q, &a.link, 10);
    eb_redis_pending_push(&q, &b.link, 20);
    eb_redis_pending_remove(&q, &a.link);
    assert_ptr_equal(q.head, &b.link);
    assert_ptr_equal(q.tail, &b.link);
}

static void test_pending_remove_of_the_newest_moves_the_tail_back(void **state) {
    struct eb_pending_queue q = EB_PENDING_QUEUE_INIT;
    struct req a = {.id = 1}, b = {.id = 2}, c = {.id = 4};
    eb_redis_pending_push(&q, &a.link, 10);
    eb_redis_pending_push(&q, &b.link, 20);
    eb_redis_pending_remove(&q, &b.link);
    assert_ptr_equal(q.tail, &a.link);
    /* The next push goes after a, not after the removed b. */
    eb_redis_pending_push(&q, &c.link, 30);
    assert_int_equal(pop_id(&q), 1);
    assert_int_equal(pop_id(&q), 4);
    assert_int_equal(pop_id(&q), -1);
}

static void test_pending_remove_from_the_middle_keeps_the_order(void **state) {
    struct eb_pending_queue q = EB_PENDING_QUEUE_INIT;
    struct req a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    eb_redis_pending_push(&q, &a.link, 10);
    eb_redis_pending_push(&q, &b.link, 20);
    eb_redis_pending_push(&q, &c.link, 30);
    eb_redis_pending_remove(&q, &b.link);
    assert_int_equal(pop_id(&q), 1);
    assert_int_equal(pop_id(&q), 3);
    assert_int_equal(pop_id(&q), -1);
}

static void test_pending_remove_of_a_request_not_queued_changes_nothing(void **state) {
    struct eb_pending_queue q = EB_PENDING_QUEUE_INIT;
    struct req a = {.id = 1}, stranger = {.id = 9};
    eb_redis_pending_push(&q, &a.link, 10);
    eb_redis_pending_remove(&q, &stranger.link);
    assert_ptr_equal(q.head, &a.link);
    assert_ptr_equal(q.tail, &a.link);
    eb_redis_pending_remove(&q, &a.link);
    eb_redis_pending_remove(&q, &a.link); /* twice: still nothing */
    assert_null(q.head);
    assert_null(q.tail);
}

static void test_pending_nothing_is_overdue_when_empty(void **state) {
    struct eb_pending_queue q = EB_PENDING_QUEUE_INIT;
    assert_null(eb_redis_pending_overdue(&q, 1000000, 0, 1));
}

static void test_pending_the_oldest_is_overdue_past_the_limit(void **state) {
    struct eb_pending_queue q = EB_PENDING_QUEUE_INIT;
    struct req a = {.id = 1}, b = {.id = 2};
    eb_redis_pending_push(&q, &a.link, 100);
    eb_redis_pending_push(&q, &b.link, 500);
    assert_null(eb_redis_pending_overdue(&q, 600, 0, 500)); /* waited exactly the limit */
    assert_ptr_equal(eb_redis_pending_overdue(&q, 601, 0, 500), &a.link);
    eb_redis_pending_remove(&q, &a.link);
    assert_null(eb_redis_pending_overdue(&q, 601, 0, 500)); /* b has waited 101 */
}

static void test_pending_a_command_sent_before_the_connect_ages_from_the_connect(void **state) {
    struct eb_pending_queue q = EB_PENDING_QUEUE_INIT;
    struct req a = {.id = 1};
    eb_redis_pending_push(&q, &a.link, 100);                    /* queued while connecting */
    assert_null(eb_redis_pending_overdue(&q, 1200, 1000, 500)); /* up at 1000: 200 waited */
    assert_ptr_equal(eb_redis_pending_overdue(&q, 1501, 1000, 500), &a.link);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_pops_in_the_order_pushed),
        cmocka_unit_test(test_pending_remove_of_the_oldest_leaves_the_rest),
        cmocka_unit_test(test_pending_remove_of_the_newest_moves_the_tail_back),
        cmocka_unit_test(test_pending_remove_from_the_middle_keeps_the_order),
        cmocka_unit_test(test_pending_remove_of_a_request_not_queued_changes_nothing),
        cmocka_unit_test(test_pending_nothing_is_overdue_when_empty),
        cmocka_unit_test(test_pending_the_oldest_is_overdue_past_the_limit),
        cmocka_unit_test(test_pending_a_command_sent_before_the_connect_ages_from_the_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
