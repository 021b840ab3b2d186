/* test_redis_url.c -- `redis.url` in its three topologies and two
 * transports: what each form yields, and where each mistake is pointed at. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/redis_url.h"
#include "core/error.h"

static struct eb_redis_url u;
static char err[256];
static size_t off;

static void parse_ok(const char *url) {
    int rc = eb_redis_url_parse(url, &u, &off, err, sizeof(err));
    if (rc != 0)
        fail_msg("'%s' should parse, got: %s (at %zu)", url, err, off);
}

/* The error of url, which must fail at byte offset want_off. */
static const char *parse_err(const char *url, size_t want_off) {
    int rc = eb_redis_url_parse(url, &u, &off, err, sizeof(err));
    if (rc == 0)
        fail_msg("'%s' should not parse", url);
    assert_int_equal(rc, EB_ECONFIG);
    if (off != want_off)
        fail_msg("'%s': error at %zu, want %zu: %s", url, off, want_off, err);
    assert_null(u.nodes); /* nothing left to free */
    return err;
}

static void assert_contains(const char *s, const char *sub) {
    if (!strstr(s, sub))
        fail_msg("'%s' does not contain '%s'", s, sub);
}

static int teardown(void **state) {
    eb_redis_url_free(&u);
    return 0;
}

/* ---- forms ------------------------------------------------------------- */

static void test_redis_url_standalone_takes_host_port_and_db(void **state) {
    parse_ok("redis://cache-0:6380/3");
    assert_int_equal(u.topology, EB_REDIS_STANDALONE);
    assert_false(u.tls);
    assert_int_equal(u.nnodes, 1);
    assert_string_equal(u.nodes[0].host, "cache-0");
    assert_int_equal(u.nodes[0].port, 6380);
    assert_int_equal(u.db, 3);
}

static void test_redis_url_standalone_port_defaults_to_6379(void **state) {
    parse_ok("redis://cache");
    assert_int_equal(u.nodes[0].port, 6379);
    assert_int_equal(u.db, -1);
}

static void test_redis_url_sentinel_lists_sentinels_and_the_master_name(void **state) {
    parse_ok("redis-sentinel://s1,s2:26380,[::1]/orders");
    assert_int_equal(u.topology, EB_REDIS_SENTINEL);
    assert_int_equal(u.nnodes, 3);
    assert_int_equal(u.nodes[0].port, 26379);
    assert_int_equal(u.nodes[1].port, 26380);
    assert_string_equal(u.nodes[2].host, "::1");
    assert_string_equal(u.master_name, "orders");
    assert_int_equal(u.db, -1);
}

static void test_redis_url_sentinel_may_select_a_database_after_the_master(void **state) {
    parse_ok("redis-sentinel://s1/orders/2");
    assert_string_equal(u.master_name, "orders");
    assert_int_equal(u.db, 2);
}

static void test_redis_url_cluster_lists_seeds(void **state) {
    parse_ok("redis-cluster://n1:7000,n2:7001");
    assert_int_equal(u.topology, EB_REDIS_CLUSTER);
    assert_int_equal(u.nnodes, 2);
    assert_string_equal(u.nodes[1].host, "n2");
    assert_int_equal(u.nodes[1].port, 7001);
    assert_null(u.master_name);
}

static void test_redis_url_cluster_accepts_database_zero(void **state) {
    parse_ok("redis-cluster://n1/0");
    assert_int_equal(u.db, 0);
}

static void test_redis_url_rediss_schemes_ask_for_tls(void **state) {
    const char *urls[] = {"rediss://h", "rediss-sentinel://s/m", "rediss-cluster://n"};
    const enum eb_redis_url_topology topo[] = {EB_REDIS_STANDALONE, EB_REDIS_SENTINEL,
                                           EB_REDIS_CLUSTER};
    for (size_t i = 0; i < 3; i++) {
        parse_ok(urls[i]);
        assert_true(u.tls);
        assert_int_equal(u.topology, topo[i]);
        eb_redis_url_free(&u);
    }
}

static void test_redis_url_scheme_is_case_insensitive(void **state) {
    parse_ok("Redis-Cluster://n1");
    assert_int_equal(u.topology, EB_REDIS_CLUSTER);
}

static void test_redis_url_userinfo_is_percent_decoded(void **state) {
    const char *url = "redis-cluster://app:p%40ss%3Aw@n1";
    parse_ok(url);
    assert_string_equal(u.username, "app");
    assert_string_equal(u.password, "p@ss:w");
    assert_int_equal(u.password_off, strlen("redis-cluster://app:"));
    assert_int_equal(u.password_len, strlen("p%40ss%3Aw"));
}

static void test_redis_url_password_may_hold_an_unencoded_at(void **state) {
    parse_ok("redis://:p@ss@h:1");
    assert_null(u.username);
    assert_string_equal(u.password, "p@ss");
    assert_string_equal(u.nodes[0].host, "h");
}

static void test_redis_url_user_without_password(void **state) {
    parse_ok("redis://reader@h");
    assert_string_equal(u.username, "reader");
    assert_null(u.password);
}

static void test_redis_url_ipv6_host_loses_its_brackets(void **state) {
    parse_ok("redis://[fe80::1]:6390");
    assert_string_equal(u.nodes[0].host, "fe80::1");
    assert_int_equal(u.nodes[0].port, 6390);
}

static void test_redis_url_scheme_names_round_trip(void **state) {
    assert_string_equal(eb_redis_url_scheme(EB_REDIS_SENTINEL, true), "rediss-sentinel");
    assert_string_equal(eb_redis_url_scheme(EB_REDIS_CLUSTER, false), "redis-cluster");
    assert_string_equal(eb_redis_url_topology_name(EB_REDIS_CLUSTER), "cluster");
}

/* ---- mistakes, each pointed at -------------------------------------------- */

static void test_redis_url_without_scheme_is_refused(void **state) {
    assert_contains(parse_err("cache:6379", 0), "there is no scheme");
}

static void test_redis_url_other_clients_spellings_are_corrected(void **state) {
    assert_contains(parse_err("redis+sentinel://s/m", 0), "spelled 'redis-sentinel'");
    assert_contains(parse_err("cluster://n", 0), "spelled 'redis-cluster'");
}

static void test_redis_url_unknown_scheme_is_named(void **state) {
    assert_contains(parse_err("http://h", 0), "unknown scheme 'http'");
}

static void test_redis_url_unix_sockets_are_refused(void **state) {
    assert_contains(parse_err("unix:///tmp/redis.sock", 0), "unix sockets are not supported");
}

static void test_redis_url_standalone_with_two_hosts_points_at_the_comma(void **state) {
    assert_contains(parse_err("redis://a:1,b:2", 11), "names one server");
}

static void test_redis_url_empty_node_is_pointed_at(void **state) {
    assert_contains(parse_err("redis-cluster://a,,b", 18), "a node in the list is empty");
    eb_redis_url_free(&u);
    assert_contains(parse_err("redis-cluster://a,", 18), "a node in the list is empty");
}

static void test_redis_url_mixed_schemes_point_at_the_node(void **state) {
    assert_contains(parse_err("redis-cluster://a:1,redis://b:2", 20), "a scheme of its own");
}

static void test_redis_url_bad_port_in_a_list_points_at_it(void **state) {
    assert_contains(parse_err("redis-sentinel://s1:26379,s2:99999/m", 29),
                    "the port of 's2:99999'");
}

static void test_redis_url_port_zero_and_signs_are_refused(void **state) {
    parse_err("redis://h:0", 10);
    eb_redis_url_free(&u);
    parse_err("redis://h:+1", 10);
    eb_redis_url_free(&u);
    parse_err("redis://h:", 10);
}

static void test_redis_url_duplicate_node_is_pointed_at(void **state) {
    assert_contains(parse_err("redis-cluster://n1:1,N1:1", 21), "listed twice");
}

static void test_redis_url_sentinel_without_master_name_says_how(void **state) {
    assert_contains(parse_err("redis-sentinel://s1,s2", 22), "the master name is missing");
    eb_redis_url_free(&u);
    assert_contains(parse_err("redis-sentinel://s1/", 20), "the master name is missing");
}

static void test_redis_url_cluster_refuses_other_databases(void **state) {
    assert_contains(parse_err("redis-cluster://n/4", 18), "only database 0");
}

static void test_redis_url_bad_database_is_refused(void **state) {
    assert_contains(parse_err("redis://h/x", 10), "not a number from 0 to 65535");
    eb_redis_url_free(&u);
    parse_err("redis://h/70000", 10);
}

static void test_redis_url_options_are_refused(void **state) {
    assert_contains(parse_err("redis://h:1?timeout=1", 11), "options");
}

static void test_redis_url_bad_percent_escape_is_pointed_at(void **state) {
    assert_contains(parse_err("redis://u:a%zz@h", 11), "two hex digits");
}

static void test_redis_url_ipv6_without_closing_bracket(void **state) {
    assert_contains(parse_err("redis://[::1:6379", 8), "not closed");
}

static void test_redis_url_host_with_forbidden_character(void **state) {
    assert_contains(parse_err("redis://ca;che", 10), "not allowed in a host name");
}

static void test_redis_url_errors_never_quote_the_password(void **state) {
    parse_err("redis://u:hunter2@h:0", 20);
    assert_null(strstr(err, "hunter2"));
}

static void test_redis_url_too_many_nodes_are_refused(void **state) {
    char url[2048] = "redis-cluster://";
    for (int i = 0; i <= EB_REDIS_URL_MAX_NODES; i++) {
        char node[16];
        snprintf(node, sizeof(node), "%sn%d", i ? "," : "", i);
        strcat(url, node);
    }
    assert_contains(parse_err(url, 16), "at most");
}

static void test_redis_url_free_of_zeroed_struct_is_noop(void **state) {
    struct eb_redis_url z = {0};
    eb_redis_url_free(&z);
    eb_redis_url_free(NULL);
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_redis_url_standalone_takes_host_port_and_db),
        T(test_redis_url_standalone_port_defaults_to_6379),
        T(test_redis_url_sentinel_lists_sentinels_and_the_master_name),
        T(test_redis_url_sentinel_may_select_a_database_after_the_master),
        T(test_redis_url_cluster_lists_seeds),
        T(test_redis_url_cluster_accepts_database_zero),
        T(test_redis_url_rediss_schemes_ask_for_tls),
        T(test_redis_url_scheme_is_case_insensitive),
        T(test_redis_url_userinfo_is_percent_decoded),
        T(test_redis_url_password_may_hold_an_unencoded_at),
        T(test_redis_url_user_without_password),
        T(test_redis_url_ipv6_host_loses_its_brackets),
        T(test_redis_url_scheme_names_round_trip),
        T(test_redis_url_without_scheme_is_refused),
        T(test_redis_url_other_clients_spellings_are_corrected),
        T(test_redis_url_unknown_scheme_is_named),
        T(test_redis_url_unix_sockets_are_refused),
        T(test_redis_url_standalone_with_two_hosts_points_at_the_comma),
        T(test_redis_url_empty_node_is_pointed_at),
        T(test_redis_url_mixed_schemes_point_at_the_node),
        T(test_redis_url_bad_port_in_a_list_points_at_it),
        T(test_redis_url_port_zero_and_signs_are_refused),
        T(test_redis_url_duplicate_node_is_pointed_at),
        T(test_redis_url_sentinel_without_master_name_says_how),
        T(test_redis_url_cluster_refuses_other_databases),
        T(test_redis_url_bad_database_is_refused),
        T(test_redis_url_options_are_refused),
        T(test_redis_url_bad_percent_escape_is_pointed_at),
        T(test_redis_url_ipv6_without_closing_bracket),
        T(test_redis_url_host_with_forbidden_character),
        T(test_redis_url_errors_never_quote_the_password),
        T(test_redis_url_too_many_nodes_are_refused),
        T(test_redis_url_free_of_zeroed_struct_is_noop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
