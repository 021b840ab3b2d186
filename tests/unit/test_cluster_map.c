/* test_cluster_map.c -- a cluster's masters and slots from what real
 * clusters answered (tests/data/cluster: CLUSTER SHARDS and CLUSTER NODES
 * of Redis 7.0.15, 3 masters + 3 replicas, healthy and after one
 * CLUSTER FAILOVER and one SIGKILLed master) and from edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "core/error.h"
#include "redis/cluster_map.h"

static const struct eb_cluster_source seed = {"10.0.0.9", 7000, false};
static struct eb_cluster_map *map;
static char err[256];

static char *slurp(const char *name, size_t *len) {
    char path[4096];
    const char *suffix = "/tests/unit/test_cluster_map.c";
    size_t n = strlen(__FILE__) - strlen(suffix);
    snprintf(path, sizeof(path), "%.*s/tests/data/cluster/%s", (int)n, __FILE__, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* The reply parsed from a RESP file, as hiredis hands it over. */
static redisReply *resp(const char *name) {
    size_t len;
    char *buf = slurp(name, &len);
    redisReader *r = redisReaderCreate();
    void *reply = NULL;
    redisReaderFeed(r, buf, len);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    assert_non_null(reply);
    redisReaderFree(r);
    free(buf);
    return reply;
}

static void from_shards(const char *name) {
    redisReply *r = resp(name);
    int rc = eb_cluster_map_from_shards(r, &seed, &map, err, sizeof(err));
    freeReplyObject(r);
    if (rc != 0)
        fail_msg("%s: %s", name, err);
}

static void from_nodes_text(const char *text) {
    int rc = eb_cluster_map_from_nodes(text, strlen(text), &seed, &map, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
}

static void from_nodes(const char *name) {
    size_t len;
    char *text = slurp(name, &len);
    int rc = eb_cluster_map_from_nodes(text, len, &seed, &map, err, sizeof(err));
    free(text);
    if (rc != 0)
        fail_msg("%s: %s", name, err);
}

static int teardown(void **state) {
    eb_cluster_map_free(map);
    map = NULL;
    return 0;
}

static void assert_master(size_t i, int port, size_t nslots, size_t nreplicas) {
    assert_true(i < map->nmasters);
    assert_string_equal(map->masters[i].host, "127.0.0.1");
    assert_int_equal(map->masters[i].port, port);
    assert_int_equal(map->masters[i].nslots, nslots);
    assert_int_equal(map->masters[i].nreplicas, nreplicas);
    assert_false(map->masters[i].failed);
}

/* ---- a healthy cluster, either command --------------------------------- */

static void test_cluster_map_shards_of_a_healthy_cluster(void **state) {
    from_shards("shards-3m3r.resp");
    assert_int_equal(map->nmasters, 3);
    assert_master(0, 31001, 5461, 1);
    assert_master(1, 31002, 5462, 1);
    assert_master(2, 31003, 5461, 1);
    assert_int_equal(eb_cluster_map_unserved(map), 0);
}

static void test_cluster_map_nodes_of_a_healthy_cluster(void **state) {
    from_nodes("nodes-3m3r.txt");
    assert_int_equal(map->nmasters, 3);
    assert_master(0, 31001, 5461, 1);
    assert_master(1, 31002, 5462, 1);
    assert_master(2, 31003, 5461, 1);
}

static void test_cluster_map_owner_answers_per_slot(void **state) {
    from_shards("shards-3m3r.resp");
    assert_int_equal(eb_cluster_map_owner(map, 0)->port, 31001);
    assert_int_equal(eb_cluster_map_owner(map, 5460)->port, 31001);
    assert_int_equal(eb_cluster_map_owner(map, 5461)->port, 31002);
    assert_int_equal(eb_cluster_map_owner(map, 16383)->port, 31003);
    assert_null(eb_cluster_map_owner(map, 16384));
}

static void test_cluster_map_both_commands_agree(void **state) {
    from_shards("shards-failover.resp");
    struct eb_cluster_map *a = map;
    map = NULL;
    from_nodes("nodes-failover.txt");
    assert_int_equal(a->nmasters, map->nmasters);
    for (size_t i = 0; i < a->nmasters; i++) {
        assert_string_equal(a->masters[i].id, map->masters[i].id);
        assert_int_equal(a->masters[i].port, map->masters[i].port);
        assert_int_equal(a->masters[i].nslots, map->masters[i].nslots);
    }
    assert_memory_equal(a->owner, map->owner, sizeof(a->owner));
    eb_cluster_map_free(a);
}

/* ---- after failovers --------------------------------------------------- */

static void test_cluster_map_follows_a_failover_and_forgets_the_dead(void **state) {
    /* 31004 took over 0-5460 by CLUSTER FAILOVER; 31002 was SIGKILLed and
     * 31005 promoted; 31002 is listed as a failed slotless master. */
    from_nodes("nodes-failover.txt");
    assert_int_equal(map->nmasters, 3);
    assert_master(0, 31004, 5461, 1);
    assert_master(1, 31005, 5462, 0);
    assert_master(2, 31003, 5461, 1);
    assert_int_equal(eb_cluster_map_find(map, "bafc40076b8b1590ffb0124f00eb0e0c615c3046"), -1);
}

static void test_cluster_map_mid_failover_keeps_the_failed_master_until_replaced(void **state) {
    /* Read while 31002 was marked failed and 31005 not yet promoted: the
     * failed master still owns its slots (the bridge keeps trying it and
     * is not ready) until the next read shows 31005. */
    from_shards("shards-mid-failover.resp");
    assert_int_equal(map->nmasters, 3);
    assert_int_equal(map->masters[1].port, 31002);
    assert_true(map->masters[1].failed);
    assert_int_equal(map->masters[1].nslots, 5462);
}

static void test_cluster_map_keeps_a_failed_master_that_still_owns_slots(void **state) {
    from_nodes_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:1@2 master,fail - 0 0 1 "
                    "disconnected 0-99\n"
                    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 127.0.0.1:3@4 myself,master - 0 0 2 "
                    "connected 100-16383\n");
    assert_int_equal(map->nmasters, 2);
    assert_true(map->masters[0].failed);
    assert_int_equal(map->masters[0].nslots, 100);
}

/* ---- edge cases ---------------------------------------------------------- */

static void test_cluster_map_subscribes_a_master_without_slots(void **state) {
    from_nodes_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:1@2 master - 0 0 1 "
                    "connected 0-16383\n"
                    "cccccccccccccccccccccccccccccccccccccccc 127.0.0.1:5@6 master - 0 0 3 "
                    "connected\n");
    assert_int_equal(map->nmasters, 2);
    assert_int_equal(map->masters[1].nslots, 0); /* slotless ones last */
    assert_int_equal(map->masters[1].port, 5);
}

static void test_cluster_map_migration_markers_leave_the_owner(void **state) {
    from_nodes_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:1@2 master - 0 0 1 "
                    "connected 0-16383 [42->-cccccccccccccccccccccccccccccccccccccccc]\n"
                    "cccccccccccccccccccccccccccccccccccccccc 127.0.0.1:5@6 master - 0 0 3 "
                    "connected [42-<-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n");
    assert_int_equal(eb_cluster_map_owner(map, 42)->port, 1);
    assert_int_equal(map->masters[1].nslots, 0);
}

static void test_cluster_map_unknown_address_is_the_seed(void **state) {
    from_nodes_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa :7000@17000 myself,master - 0 0 1 "
                    "connected 0-16383\n");
    assert_string_equal(map->masters[0].host, "10.0.0.9");
    assert_int_equal(map->masters[0].port, 7000);
}

static void test_cluster_map_ipv6_and_hostname_addresses(void **state) {
    from_nodes_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ::1:7001@17001,redis-0 master - 0 0 1 "
                    "connected 0-16383\n");
    assert_string_equal(map->masters[0].host, "::1");
    assert_int_equal(map->masters[0].port, 7001);
}

static void test_cluster_map_skips_nodes_in_handshake_or_without_address(void **state) {
    from_nodes_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:1@2 master - 0 0 1 "
                    "connected 0-16383\n"
                    "cccccccccccccccccccccccccccccccccccccccc :0@0 master,noaddr - 0 0 3 "
                    "disconnected\n"
                    "dddddddddddddddddddddddddddddddddddddddd 127.0.0.1:9@10 handshake - 0 0 0 "
                    "disconnected\n");
    assert_int_equal(map->nmasters, 1);
}

static void test_cluster_map_counts_unserved_slots(void **state) {
    from_nodes_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:1@2 master - 0 0 1 "
                    "connected 0-99 200\n");
    assert_int_equal(eb_cluster_map_unserved(map), 16384 - 101);
    assert_null(eb_cluster_map_owner(map, 150));
}

static void test_cluster_map_tls_ports_are_taken_when_announced(void **state) {
    const struct eb_cluster_source tls = {"h", 1, true};
    const char *text = "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n"
                       "*10\r\n$2\r\nid\r\n$40\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
                       "$4\r\nport\r\n:6379\r\n$8\r\ntls-port\r\n:6380\r\n$2\r\nip\r\n$2\r\n::\r\n"
                       "$4\r\nrole\r\n$6\r\nmaster\r\n";
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    redisReaderFeed(rd, text, strlen(text));
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    redisReaderFree(rd);
    assert_int_equal(eb_cluster_map_from_shards(reply, &tls, &map, err, sizeof(err)), 0);
    freeReplyObject(reply);
    assert_int_equal(map->masters[0].port, 6380);
}

/* ---- malformed input ----------------------------------------------------- */

static void test_cluster_map_refuses_an_error_reply(void **state) {
    redisReply r = {.type = REDIS_REPLY_ERROR, .str = "ERR This instance has cluster support "
                                                       "disabled"};
    assert_int_equal(eb_cluster_map_from_shards(&r, &seed, &map, err, sizeof(err)), EB_EPROTO);
    assert_null(map);
    assert_non_null(strstr(err, "a list of shards"));
}

static void test_cluster_map_refuses_lines_that_are_not_nodes(void **state) {
    const char *text = "not a node line\n";
    assert_int_equal(eb_cluster_map_from_nodes(text, strlen(text), &seed, &map, err, sizeof(err)),
                     EB_EPROTO);
    assert_null(map);
}

static void test_cluster_map_refuses_slots_out_of_range(void **state) {
    const char *text = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:1@2 master - 0 0 1 "
                       "connected 16000-16384\n";
    assert_int_equal(eb_cluster_map_from_nodes(text, strlen(text), &seed, &map, err, sizeof(err)),
                     EB_EPROTO);
}

static void test_cluster_map_refuses_a_slot_claimed_by_two_masters(void **state) {
    const char *text = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:1@2 master - 0 0 1 "
                       "connected 0-100\n"
                       "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 127.0.0.1:3@4 master - 0 0 2 "
                       "connected 100-200\n";
    assert_int_equal(eb_cluster_map_from_nodes(text, strlen(text), &seed, &map, err, sizeof(err)),
                     EB_EPROTO);
    assert_null(map);
    assert_non_null(strstr(err, "slot 100 is claimed by two masters"));
}

static void test_cluster_map_refuses_a_cluster_without_masters(void **state) {
    const char *text = "\n";
    assert_int_equal(eb_cluster_map_from_nodes(text, strlen(text), &seed, &map, err, sizeof(err)),
                     EB_EPROTO);
    assert_non_null(strstr(err, "no master"));
}

/* ---- redirections ---------------------------------------------------- */

static enum eb_cluster_redirect_kind redirect(const char *text, struct eb_cluster_redirect *rd) {
    return eb_cluster_redirect_parse(text, strlen(text), rd);
}

static void test_cluster_redirect_moved_names_slot_host_and_port(void **state) {
    struct eb_cluster_redirect rd;
    assert_int_equal(redirect("MOVED 3999 127.0.0.1:6381", &rd), EB_CLUSTER_REDIRECT_MOVED);
    assert_int_equal(rd.kind, EB_CLUSTER_REDIRECT_MOVED);
    assert_int_equal(rd.slot, 3999);
    assert_string_equal(rd.host, "127.0.0.1");
    assert_int_equal(rd.port, 6381);
    /* IPv6: the port is after the last colon */
    assert_int_equal(redirect("MOVED 0 ::1:7000", &rd), EB_CLUSTER_REDIRECT_MOVED);
    assert_string_equal(rd.host, "::1");
    assert_int_equal(rd.port, 7000);
    assert_int_equal(redirect("MOVED 16383 cache-2.svc:6379", &rd), EB_CLUSTER_REDIRECT_MOVED);
    assert_string_equal(rd.host, "cache-2.svc");
}

static void test_cluster_redirect_ask_is_told_apart_from_moved(void **state) {
    struct eb_cluster_redirect rd;
    assert_int_equal(redirect("ASK 12 127.0.0.1:7002", &rd), EB_CLUSTER_REDIRECT_ASK);
    assert_int_equal(rd.slot, 12);
    assert_int_equal(rd.port, 7002);
}

static void test_cluster_redirect_without_an_address_means_the_node_asked(void **state) {
    struct eb_cluster_redirect rd;
    assert_int_equal(redirect("MOVED 3999 :6380", &rd), EB_CLUSTER_REDIRECT_MOVED);
    assert_string_equal(rd.host, "");
    assert_int_equal(rd.port, 6380);
    assert_int_equal(redirect("MOVED 3999 ?:6380", &rd), EB_CLUSTER_REDIRECT_MOVED);
    assert_string_equal(rd.host, "");
}

static void test_cluster_redirect_failover_errors_ask_for_a_retry(void **state) {
    struct eb_cluster_redirect rd;
    const char *retry[] = {"TRYAGAIN Multiple keys request during rehashing of slot",
                           "CLUSTERDOWN The cluster is down",
                           "READONLY You can't write against a read only replica.",
                           "MASTERDOWN Link with MASTER is down", "LOADING Redis is loading",
                           "CLUSTERDOWN"};
    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
        assert_int_equal(redirect(retry[i], &rd), EB_CLUSTER_REDIRECT_RETRY);
}

static void test_cluster_redirect_other_errors_and_malformed_ones_are_none(void **state) {
    struct eb_cluster_redirect rd;
    const char *none[] = {"ERR Function not found", "CROSSSLOT Keys in request don't hash",
                          "MOVEDX 1 a:1", "MOVED", "MOVED 1", "MOVED x a:1", "MOVED 16384 a:1",
                          "MOVED -1 a:1", "MOVED 1 a", "MOVED 1 a:0", "MOVED 1 a:65536",
                          "MOVED 1 a:1 extra", "TRYAGAINX", ""};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        assert_int_equal(redirect(none[i], &rd), EB_CLUSTER_REDIRECT_NONE);
    assert_int_equal(eb_cluster_redirect_parse(NULL, 0, &rd), EB_CLUSTER_REDIRECT_NONE);
}

static void test_cluster_redirect_reads_only_the_given_length(void **state) {
    struct eb_cluster_redirect rd;
    const char text[] = "MOVED 7 127.0.0.1:6379 and more";
    assert_int_equal(eb_cluster_redirect_parse(text, 22, &rd), EB_CLUSTER_REDIRECT_MOVED);
    assert_int_equal(rd.port, 6379);
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_cluster_map_shards_of_a_healthy_cluster),
        T(test_cluster_map_nodes_of_a_healthy_cluster),
        T(test_cluster_map_owner_answers_per_slot),
        T(test_cluster_map_both_commands_agree),
        T(test_cluster_map_follows_a_failover_and_forgets_the_dead),
        T(test_cluster_map_mid_failover_keeps_the_failed_master_until_replaced),
        T(test_cluster_map_keeps_a_failed_master_that_still_owns_slots),
        T(test_cluster_map_subscribes_a_master_without_slots),
        T(test_cluster_map_migration_markers_leave_the_owner),
        T(test_cluster_map_unknown_address_is_the_seed),
        T(test_cluster_map_ipv6_and_hostname_addresses),
        T(test_cluster_map_skips_nodes_in_handshake_or_without_address),
        T(test_cluster_map_counts_unserved_slots),
        T(test_cluster_map_tls_ports_are_taken_when_announced),
        T(test_cluster_map_refuses_an_error_reply),
        T(test_cluster_map_refuses_lines_that_are_not_nodes),
        T(test_cluster_map_refuses_slots_out_of_range),
        T(test_cluster_map_refuses_a_slot_claimed_by_two_masters),
        T(test_cluster_map_refuses_a_cluster_without_masters),
        cmocka_unit_test(test_cluster_redirect_moved_names_slot_host_and_port),
        cmocka_unit_test(test_cluster_redirect_ask_is_told_apart_from_moved),
        cmocka_unit_test(test_cluster_redirect_without_an_address_means_the_node_asked),
        cmocka_unit_test(test_cluster_redirect_failover_errors_ask_for_a_retry),
        cmocka_unit_test(test_cluster_redirect_other_errors_and_malformed_ones_are_none),
        cmocka_unit_test(test_cluster_redirect_reads_only_the_given_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
