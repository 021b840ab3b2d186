/* test_kafka_stats.c -- counting the brokers that are up in librdkafka's
 * statistics JSON without reading past "brokers": documents shaped as
 * librdkafka 2.0.2 writes them (nested latency objects, request counters,
 * per-broker partition lists), every cut of a document, escapes that hide
 * quotes and brackets, and documents it must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "kafka/kafka_stats.h"

/* One broker as librdkafka 2.0.2 writes it, shortened: scalars, nested
 * latency objects, the request counters and the partitions it leads. */
#define BROKER(name, state)                                                                        \
    "\"" name "\": { \"name\":\"" name "\", \"nodeid\":1, \"nodename\":\"" name "\", "            \
    "\"source\":\"configured\", \"state\":\"" state "\", \"stateage\":3185331, "                   \
    "\"outbuf_cnt\":0, \"tx\":3325, \"int_latency\": { \"min\":2096930, \"max\":2573641, "          \
    "\"stddev\": 0, \"p99_99\": 0, \"cnt\":1995 }, \"req\": { \"Produce\": 3321, "                  \
    "\"Metadata\": 1 }, \"toppars\": { \"orders-0\": { \"topic\":\"orders\", \"partition\":0 }, "   \
    "\"orders-3\": { \"topic\":\"orders\", \"partition\":3 } } }"

#define HEAD                                                                                       \
    "{ \"name\": \"rdkafka#producer-1\", \"client_id\": \"rdkafka\", \"type\": \"producer\", "     \
    "\"ts\":1412999813, \"msg_cnt\":0, \"msg_size_max\":1073741824, "

#define TOPICS                                                                                     \
    ", \"topics\":{ \"orders\": { \"topic\":\"orders\", \"partitions\":{ \"0\": { "               \
    "\"partition\":0, \"broker\":1, \"leader\":1, \"fetch_state\":\"none\" } } } }, "            \
    "\"eos\": { \"idemp_state\":\"Assigned\", \"producer_id\":1 }, \"tx\":9 }"

static const char doc_three_brokers[] =
    HEAD "\"brokers\":{ " BROKER("k1:9092/1", "UP") ", " BROKER("k2:9092/2", "DOWN") ", " BROKER(
        "k3:9092/3", "UP") ", " BROKER(":0/internal", "INIT") " }" TOPICS;

static int up(const char *doc) {
    return eb_kafka_stats_brokers_up(doc, strlen(doc));
}

static void test_stats_counts_the_brokers_in_state_up(void **state) {
    (void)state;
    assert_int_equal(up(doc_three_brokers), 2);
}

static void test_stats_counts_zero_when_every_broker_is_down(void **state) {
    (void)state;
    assert_int_equal(up(HEAD "\"brokers\":{ " BROKER("k1:9092/1", "CONNECT") ", " BROKER(
                         "k2:9092/2", "DOWN") " }" TOPICS),
                     0);
    assert_int_equal(up(HEAD "\"brokers\":{}" TOPICS), 0);
}

/* Everything after "brokers" is never read: a document whose "topics" is
 * garbage still answers. */
static void test_stats_reads_nothing_after_the_brokers(void **state) {
    (void)state;
    assert_int_equal(up(HEAD "\"brokers\":{ " BROKER("k1:9092/1", "UP") " }, \"topics\": {{{{"), 1);
}

/* Cut at every byte: before the brokers object closes the document is
 * refused (-1, never a wrong count); from there on the count is right. */
static void test_stats_every_cut_of_a_document_is_refused_or_counted_right(void **state) {
    (void)state;
    const char *doc = doc_three_brokers;
    size_t len = strlen(doc);
    size_t brokers_end = (size_t)(strstr(doc, TOPICS) - doc);
    for (size_t cut = 0; cut <= len; cut++) {
        int n = eb_kafka_stats_brokers_up(doc, cut);
        if (n != (cut < brokers_end ? -1 : 2))
            fail_msg("cut at %zu of %zu: %d", cut, len, n);
    }
}

/* Quotes, braces and brackets inside strings, escaped quotes and escaped
 * backslashes: none of them may end a skipped value early, nor may a
 * "state" hidden in a string count. */
static void test_stats_skips_strings_holding_quotes_and_brackets(void **state) {
    (void)state;
    const char *doc = "{\"name\":\"a \\\"}{[\\\\\", \"x\":[1,\"]\",{\"y\":\"}\"}],"
                      "\"brokers\":{\"b\\\"1\":{\"note\":\"\\\"state\\\":\\\"UP\\\"\","
                      "\"state\":\"UP\",\"toppars\":{\"t-0\":{\"topic\":\"t\\\\\"}}},"
                      "\"b2\":{\"state\":\"UP\\\"\"}}}";
    assert_int_equal(up(doc), 1);
}

static void test_stats_refuses_what_is_not_a_statistics_document(void **state) {
    (void)state;
    const char *bad[] = {
        "",
        "[]",
        "null",
        "{}",                                      /* no brokers */
        "{\"name\":\"x\"}",                        /* no brokers */
        "{\"brokers\":[]}",                        /* not an object */
        "{\"brokers\":{\"b1\":\"UP\"}}",           /* a broker that is not an object */
        "{\"brokers\":{\"b1\":{\"state\":1}}}",    /* a state that is not a string */
        "{\"brokers\":{\"b1\":{\"state\":\"UP\"}", /* cut short */
        "{\"brokers\" {}}",                        /* no colon */
        "{\"a\":,\"brokers\":{}}",                 /* a missing value */
        "{\"a\":\"unterminated,\"brokers\":{}}",   /* swallowed by a string */
        "{brokers:{}}",                            /* unquoted key */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (up(bad[i]) != -1)
            fail_msg("accepted %s", bad[i]);
    }
    assert_int_equal(eb_kafka_stats_brokers_up(NULL, 0), -1);
}

/* The size that made a full parse slow: 100 brokers leading 10 000
 * partitions between them, then a "topics" member of 10 000 objects. */
static void test_stats_counts_right_in_a_document_with_many_partitions(void **state) {
    (void)state;
    struct eb_buf b = {0};
    char part[128];
    eb_buf_puts(&b, HEAD "\"brokers\":{");
    for (int br = 0; br < 100; br++) {
        snprintf(part, sizeof(part), "%s\"k%d:9092/%d\":{\"state\":\"%s\",\"toppars\":{",
                 br ? "," : "", br, br, br % 4 ? "UP" : "DOWN");
        eb_buf_puts(&b, part);
        for (int p = 0; p < 100; p++) {
            snprintf(part, sizeof(part), "%s\"t-%d\":{\"topic\":\"t\",\"partition\":%d}",
                     p ? "," : "", br * 100 + p, br * 100 + p);
            eb_buf_puts(&b, part);
        }
        eb_buf_puts(&b, "}}");
    }
    eb_buf_puts(&b, "},\"topics\":{");
    for (int p = 0; p < 10000; p++) {
        snprintf(part, sizeof(part), "%s\"t-%d\":{\"partition\":%d,\"msgq_cnt\":0}", p ? "," : "",
                 p, p);
        eb_buf_puts(&b, part);
    }
    eb_buf_puts(&b, "}}");
    assert_true(eb_buf_ok(&b));
    assert_int_equal(eb_kafka_stats_brokers_up(b.data, b.len), 75);
    eb_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_counts_the_brokers_in_state_up),
        cmocka_unit_test(test_stats_counts_zero_when_every_broker_is_down),
        cmocka_unit_test(test_stats_reads_nothing_after_the_brokers),
        cmocka_unit_test(test_stats_every_cut_of_a_document_is_refused_or_counted_right),
        cmocka_unit_test(test_stats_skips_strings_holding_quotes_and_brackets),
        cmocka_unit_test(test_stats_refuses_what_is_not_a_statistics_document),
        cmocka_unit_test(test_stats_counts_right_in_a_document_with_many_partitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
