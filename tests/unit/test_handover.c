/* test_handover.c -- the exact cut between two replicas' turns on one
 * master (handover.h): a source produces what follows its own marker in
 * its stream, up to the next marker of anybody else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "redis/handover.h"

#define NODE "10.0.0.5:6379"

/* A marker as another replica's source would publish it. */
static size_t marker_of(uint64_t token, const char *node, char *buf, size_t size) {
    return (size_t)snprintf(buf, size, "%016llx %s", (unsigned long long)token, node);
}

/* Subscribe h and claim: the marker it wants published, in buf. */
static size_t subscribe_and_claim(eb_handover_t *h, char *buf, size_t size) {
    eb_handover_subscribed(h);
    return eb_handover_claim(h, buf, size);
}

static void test_handover_a_new_subscription_produces_nothing_before_its_own_marker(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128];
    assert_true(subscribe_and_claim(h, m, sizeof(m)) > 0);
    assert_false(eb_handover_producing(h));
    eb_handover_destroy(h);
}

static void test_handover_own_marker_starts_the_turn(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128];
    size_t n = subscribe_and_claim(h, m, sizeof(m));
    assert_true(eb_handover_on_marker(h, m, n));
    assert_true(eb_handover_producing(h));
    eb_handover_destroy(h);
}

static void test_handover_another_replicas_marker_ends_the_turn(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128], other[128];
    eb_handover_on_marker(h, m, subscribe_and_claim(h, m, sizeof(m)));
    size_t n = marker_of(0xb2, NODE, other, sizeof(other));
    assert_true(eb_handover_on_marker(h, other, n));
    assert_false(eb_handover_producing(h));
    eb_handover_destroy(h);
}

static void test_handover_markers_for_another_node_are_ignored(void **state) {
    /* A Cluster forwards every PUBLISH to every node. */
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128], other[128];
    eb_handover_on_marker(h, m, subscribe_and_claim(h, m, sizeof(m)));
    size_t n = marker_of(0xb2, "10.0.0.6:6379", other, sizeof(other));
    assert_false(eb_handover_on_marker(h, other, n));
    assert_true(eb_handover_producing(h));
    eb_handover_destroy(h);
}

static void test_handover_a_foreign_payload_changes_nothing(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128];
    eb_handover_on_marker(h, m, subscribe_and_claim(h, m, sizeof(m)));
    const char *junk[] = {"", "hello", "000000000000000g " NODE, "0000000000000000 " NODE,
                          "00000000000000b2" NODE};
    for (size_t i = 0; i < sizeof(junk) / sizeof(*junk); i++)
        assert_false(eb_handover_on_marker(h, junk[i], strlen(junk[i])));
    assert_true(eb_handover_producing(h));
    eb_handover_destroy(h);
}

static void test_handover_claims_once_per_subscription(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128];
    assert_true(subscribe_and_claim(h, m, sizeof(m)) > 0);
    assert_int_equal(eb_handover_claim(h, m, sizeof(m)), 0);
    eb_handover_destroy(h);
}

static void test_handover_no_claim_before_subscribed(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128];
    assert_int_equal(eb_handover_claim(h, m, sizeof(m)), 0);
    eb_handover_destroy(h);
}

static void test_handover_a_lost_connection_stops_production_until_the_next_marker(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128];
    size_t n = subscribe_and_claim(h, m, sizeof(m));
    eb_handover_on_marker(h, m, n);
    eb_handover_unsubscribed(h);
    assert_false(eb_handover_producing(h));
    n = subscribe_and_claim(h, m, sizeof(m)); /* a new stream: a new claim */
    assert_true(n > 0);
    assert_false(eb_handover_producing(h));
    eb_handover_on_marker(h, m, n);
    assert_true(eb_handover_producing(h));
    eb_handover_destroy(h);
}

static void test_handover_cut_off_while_owning_claims_again(void **state) {
    /* Two replicas that both believe they own the unit take turns. */
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128], other[128];
    eb_handover_on_marker(h, m, subscribe_and_claim(h, m, sizeof(m)));
    eb_handover_on_marker(h, other, marker_of(0xb2, NODE, other, sizeof(other)));
    size_t n = eb_handover_claim(h, m, sizeof(m));
    assert_true(n > 0);
    eb_handover_on_marker(h, m, n);
    assert_true(eb_handover_producing(h));
    eb_handover_destroy(h);
}

static void test_handover_a_release_produces_on_until_the_takers_marker(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128], other[128];
    eb_handover_on_marker(h, m, subscribe_and_claim(h, m, sizeof(m)));
    eb_handover_release(h, 1000);
    assert_true(eb_handover_producing(h));
    assert_false(eb_handover_released(h, 10));
    eb_handover_on_marker(h, other, marker_of(0xb2, NODE, other, sizeof(other)));
    assert_false(eb_handover_producing(h));
    assert_true(eb_handover_released(h, 20));
    eb_handover_destroy(h);
}

static void test_handover_a_release_stops_production_at_its_deadline(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128];
    eb_handover_on_marker(h, m, subscribe_and_claim(h, m, sizeof(m)));
    eb_handover_release(h, 1000);
    assert_false(eb_handover_released(h, 999));
    assert_true(eb_handover_released(h, 1000));
    assert_false(eb_handover_producing(h));
    eb_handover_destroy(h);
}

static void test_handover_a_release_of_a_source_not_producing_is_over_at_once(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128];
    subscribe_and_claim(h, m, sizeof(m)); /* marker still in flight */
    eb_handover_release(h, 1000);
    assert_true(eb_handover_released(h, 0));
    eb_handover_destroy(h);
}

static void test_handover_releasing_claims_no_more(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128], other[128];
    eb_handover_on_marker(h, m, subscribe_and_claim(h, m, sizeof(m)));
    eb_handover_release(h, 1000);
    eb_handover_on_marker(h, other, marker_of(0xb2, NODE, other, sizeof(other)));
    assert_int_equal(eb_handover_claim(h, m, sizeof(m)), 0);
    eb_handover_destroy(h);
}

static void test_handover_own_marker_arriving_after_the_release_began_is_not_a_turn(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128];
    size_t n = subscribe_and_claim(h, m, sizeof(m));
    eb_handover_release(h, 1000);
    eb_handover_on_marker(h, m, n);
    assert_false(eb_handover_producing(h));
    eb_handover_destroy(h);
}

static void test_handover_reclaim_after_the_turn_ended_claims_again(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128], other[128];
    eb_handover_on_marker(h, m, subscribe_and_claim(h, m, sizeof(m)));
    eb_handover_release(h, 1000);
    eb_handover_on_marker(h, other, marker_of(0xb2, NODE, other, sizeof(other)));
    eb_handover_reclaim(h);
    size_t n = eb_handover_claim(h, m, sizeof(m));
    assert_true(n > 0);
    eb_handover_on_marker(h, m, n);
    assert_true(eb_handover_producing(h));
    eb_handover_destroy(h);
}

static void test_handover_reclaim_during_the_turn_keeps_producing(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, 0xa1);
    char m[128];
    eb_handover_on_marker(h, m, subscribe_and_claim(h, m, sizeof(m)));
    eb_handover_release(h, 1000);
    eb_handover_reclaim(h);
    assert_true(eb_handover_producing(h));
    assert_false(eb_handover_released(h, 5000)); /* no release in progress */
    assert_int_equal(eb_handover_claim(h, m, sizeof(m)), 0);
    eb_handover_destroy(h);
}

static void test_handover_marker_parse_reads_token_and_node(void **state) {
    const char *p = "00000000000000b2 " NODE;
    uint64_t token;
    const char *node;
    size_t len;
    assert_true(eb_handover_marker_parse(p, strlen(p), &token, &node, &len));
    assert_true(token == 0xb2);
    assert_int_equal(len, strlen(NODE));
    assert_memory_equal(node, NODE, len);
}

static void test_handover_channel_names_the_group(void **state) {
    char buf[64];
    size_t n = eb_handover_channel("shop", buf, sizeof(buf));
    assert_string_equal(buf, "__expiry_bridge:handover:shop");
    assert_int_equal(n, strlen(buf));
    assert_int_equal(eb_handover_channel("a-very-long-group-name", buf, 16), 0);
}

static void test_handover_marker_fits_its_bound(void **state) {
    eb_handover_t *h = eb_handover_new(NODE, UINT64_MAX);
    char m[EB_HANDOVER_MARKER_MAX(sizeof(NODE) - 1)];
    eb_handover_subscribed(h);
    assert_int_equal(eb_handover_claim(h, m, sizeof(m)), sizeof(m) - 1);
    eb_handover_destroy(h);
}

static void test_handover_destroy_null_is_noop(void **state) {
    eb_handover_destroy(NULL);
}

#define T(f) cmocka_unit_test(f)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_handover_a_new_subscription_produces_nothing_before_its_own_marker),
        T(test_handover_own_marker_starts_the_turn),
        T(test_handover_another_replicas_marker_ends_the_turn),
        T(test_handover_markers_for_another_node_are_ignored),
        T(test_handover_a_foreign_payload_changes_nothing),
        T(test_handover_claims_once_per_subscription),
        T(test_handover_no_claim_before_subscribed),
        T(test_handover_a_lost_connection_stops_production_until_the_next_marker),
        T(test_handover_cut_off_while_owning_claims_again),
        T(test_handover_a_release_produces_on_until_the_takers_marker),
        T(test_handover_a_release_stops_production_at_its_deadline),
        T(test_handover_a_release_of_a_source_not_producing_is_over_at_once),
        T(test_handover_releasing_claims_no_more),
        T(test_handover_own_marker_arriving_after_the_release_began_is_not_a_turn),
        T(test_handover_reclaim_after_the_turn_ended_claims_again),
        T(test_handover_reclaim_during_the_turn_keeps_producing),
        T(test_handover_marker_parse_reads_token_and_node),
        T(test_handover_channel_names_the_group),
        T(test_handover_marker_fits_its_bound),
        T(test_handover_destroy_null_is_noop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
