/* test_ledger.c -- the ledger's pure parts: ledger key names (a route's, a
 * bucket's, a Cluster slot's), the bucket a key's hash tag names, SCAN patterns,
 * the JSON of companion payloads (docs/event.md), the embedded function
 * library, and which configurations need a ledger. The Redis side is
 * covered by tests/e2e/test_ledger_*.py against a real redis-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/keyslot.h"
#include "ledger/ledger.h"

#define B(lit)                                                                                     \
    { (lit), sizeof(lit) - 1 }

static char text[4096];

/* The payload JSON of kind/vals as a C string (static), and whether a
 * value was embedded. */
static const char *payload(const char *kind, const struct eb_ledger_bytes *v, size_t n,
                           bool *embedded) {
    struct eb_buf b = EB_BUF_INIT;
    bool e = eb_ledger_payload_json(&b, kind, v, n);
    assert_true(eb_buf_ok(&b));
    assert_true(b.len < sizeof(text));
    memcpy(text, b.data, b.len);
    text[b.len] = '\0';
    eb_buf_free(&b);
    if (embedded)
        *embedded = e;
    return text;
}

static void test_ledger_key_is_prefix_plus_hash_tagged_route(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    eb_ledger_key(&b, "expiry-bridge:ledger:", "order-payment-timeout");
    eb_buf_cstr(&b);
    assert_string_equal(b.data, "expiry-bridge:ledger:{order-payment-timeout}");
    eb_buf_reset(&b);
    eb_ledger_key(&b, NULL, "r");
    eb_buf_cstr(&b);
    assert_string_equal(b.data, "{r}");
    eb_buf_free(&b);
}

static const char *cstr(struct eb_buf *b) {
    eb_buf_cstr(b);
    assert_true(eb_buf_ok(b));
    return b->data;
}

static void test_ledger_bucket_key_tags_route_and_bucket(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    eb_ledger_bucket_key(&b, "expiry-bridge:ledger:", "orders", 13);
    assert_string_equal(cstr(&b), "expiry-bridge:ledger:{orders:13}");
    eb_buf_reset(&b);
    eb_ledger_bucket_key(&b, NULL, "r", 0);
    assert_string_equal(cstr(&b), "{r:0}");
    eb_buf_free(&b);
}

static int bucket_of(const char *key, unsigned n) {
    return eb_ledger_bucket_of(key, strlen(key), "orders", n);
}

static void test_ledger_bucket_of_reads_the_first_hash_tag(void **state) {
    assert_int_equal(bucket_of("order:{orders:0}:7", 16), 0);
    assert_int_equal(bucket_of("order:{orders:15}:7", 16), 15);
    assert_int_equal(bucket_of("{orders:3}", 16), 3);
    /* Cluster hashes the first tag only: a later one names nothing. */
    assert_int_equal(bucket_of("order:{x}:{orders:3}", 16), -1);
    /* An empty first tag ("{}") makes Cluster hash the whole key. */
    assert_int_equal(bucket_of("order:{}{orders:3}", 16), -1);
}

static void test_ledger_bucket_of_refuses_what_no_ledger_is_named(void **state) {
    assert_int_equal(bucket_of("order:7", 16), -1);           /* no tag */
    assert_int_equal(bucket_of("order:{orders}:7", 16), -1);  /* the unbucketed ledger's */
    assert_int_equal(bucket_of("order:{orders:16}:7", 16), -1); /* out of range */
    assert_int_equal(bucket_of("order:{orders:03}:7", 16), -1); /* not canonical */
    assert_int_equal(bucket_of("order:{orders:+3}:7", 16), -1);
    assert_int_equal(bucket_of("order:{orders:3x}:7", 16), -1);
    assert_int_equal(bucket_of("order:{orders:}:7", 16), -1);
    assert_int_equal(bucket_of("order:{ordersx:3}:7", 16), -1); /* another route */
    assert_int_equal(bucket_of("order:{order:3}:7", 16), -1);
    assert_int_equal(bucket_of("order:{orders:99999999}:7", 1024), -1);
    assert_int_equal(bucket_of("order:{orders:3", 16), -1); /* unterminated: no tag */
}

static void test_ledger_bucket_key_and_a_key_naming_it_share_a_slot(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    char key[64];
    for (unsigned i = 0; i < 64; i++) {
        eb_buf_reset(&b);
        eb_ledger_bucket_key(&b, "expiry-bridge:ledger:", "orders", i);
        snprintf(key, sizeof(key), "order:{orders:%u}:%u", i, i * 7);
        assert_int_equal(eb_keyslot_of(b.data, b.len), eb_keyslot_of(key, strlen(key)));
        assert_int_equal(bucket_of(key, 64), (int)i);
    }
    eb_buf_free(&b);
}

static void test_ledger_slot_tags_hash_to_their_slot(void **state) {
    static struct eb_ledger_slot_tags t;
    assert_int_equal(eb_ledger_slot_tags_build(&t), 0);
    for (unsigned s = 0; s < EB_KEYSLOT_COUNT; s++) {
        size_t n = strlen(t.tag[s]);
        assert_true(n >= 1 && n <= EB_LEDGER_SLOT_TAG_MAX);
        assert_int_equal(eb_keyslot_crc16(t.tag[s], n) & (EB_KEYSLOT_COUNT - 1), s);
    }
    /* A fixed function of the slot: names written by earlier versions stay
     * found. The first candidates, "0".."9", "a".., take their own slots. */
    assert_string_equal(t.tag[eb_keyslot_crc16("0", 1) & (EB_KEYSLOT_COUNT - 1)], "0");
    assert_string_equal(t.tag[eb_keyslot_crc16("z", 1) & (EB_KEYSLOT_COUNT - 1)], "z");
}

static void test_ledger_slot_key_lives_in_its_slot(void **state) {
    static struct eb_ledger_slot_tags t;
    struct eb_buf b = EB_BUF_INIT;
    assert_int_equal(eb_ledger_slot_tags_build(&t), 0);
    for (unsigned s = 0; s < EB_KEYSLOT_COUNT; s += 97) {
        eb_buf_reset(&b);
        eb_ledger_slot_key(&b, "expiry-bridge:ledger:", "carts", t.tag[s]);
        assert_int_equal(eb_keyslot_of(b.data, b.len), s);
        /* its claims set, <ledger>:claims, too */
        eb_buf_puts(&b, ":claims");
        assert_int_equal(eb_keyslot_of(b.data, b.len), s);
    }
    eb_buf_reset(&b);
    eb_ledger_slot_key(&b, "p:", "carts", "1a");
    assert_string_equal(cstr(&b), "p:{1a}:carts");
    eb_buf_free(&b);
}

static void test_ledger_scan_pattern_escapes_glob_characters(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    const char prefix[] = "a*b?c[d]e\\f:";
    eb_ledger_scan_pattern(&b, prefix, sizeof(prefix) - 1);
    eb_buf_cstr(&b);
    assert_string_equal(b.data, "a\\*b\\?c\\[d\\]e\\\\f:*");
    eb_buf_reset(&b);
    eb_ledger_scan_pattern(&b, "", 0);
    eb_buf_cstr(&b);
    assert_string_equal(b.data, "*");
    eb_buf_free(&b);
}

static void test_ledger_payload_json_text_is_embedded_as_json(void **state) {
    struct eb_ledger_bytes v[] = {B("{\"order\":7,\"lines\":[1,2]}")};
    bool e;
    assert_string_equal(payload("string", v, 1, &e), "{\"order\":7,\"lines\":[1,2]}");
    assert_true(e);
    struct eb_ledger_bytes n[] = {B("42")}, s[] = {B("\"x\"")}, w[] = {B(" [true] ")};
    assert_string_equal(payload("string", n, 1, NULL), "42");
    assert_string_equal(payload("string", s, 1, NULL), "\"x\"");
    assert_string_equal(payload("string", w, 1, NULL), "[true]");
}

/* json.dumps(..., indent=2): the Kafka value must stay one compact line
 * (docs/event.md), whatever whitespace the application stored. */
static void test_ledger_payload_json_with_newlines_is_embedded_compact(void **state) {
    struct eb_ledger_bytes v[] = {B("{\n  \"order\": 7,\n  \"lines\": [\n    1,\r\n\t2\n  ]\n}\n")};
    bool e;
    assert_string_equal(payload("string", v, 1, &e), "{\"order\":7,\"lines\":[1,2]}");
    assert_true(e);
}

static void test_ledger_payload_json_keeps_whitespace_inside_strings(void **state) {
    struct eb_ledger_bytes v[] = {B("{ \"a b\" : \" x \\\" \\n y \" , \"c\" : [ \"\\\\\" , \" \" ] }")};
    assert_string_equal(payload("string", v, 1, NULL),
                        "{\"a b\":\" x \\\" \\n y \",\"c\":[\"\\\\\",\" \"]}");
}

/* True when position i of the JSON text p falls inside a string; *escape
 * when it falls between a backslash and the character it escapes. */
static bool inside_string(const char *p, size_t i, bool *escape) {
    bool inside = false;
    *escape = false;
    for (size_t j = 0; j < i; j++) {
        if (inside && p[j] == '\\') {
            *escape = j + 1 == i;
            j++;
        } else if (p[j] == '"') {
            inside = !inside;
        }
    }
    return inside;
}

/* Whitespace at every split point of a JSON text: between tokens it goes
 * (newlines and tabs too), inside a string it stays, and a split literal
 * (tr ue, -2. 5) is no longer JSON and is embedded as a JSON string. */
static void test_ledger_payload_json_compact_at_every_split_point(void **state) {
    static const char compact[] = "{\"k\":[1,{\"s\":\"a\\\"b c\"},true,null,-2.5e3],\"t\":\"\"}";
    const size_t n = sizeof(compact) - 1;
    for (size_t i = 0; i <= n; i++) {
        bool escape;
        bool inside = inside_string(compact, i, &escape);
        /* Raw newlines are not allowed in a JSON string: spaces there. */
        const char *ws = inside ? "  " : " \n\t\r ";
        size_t wn = strlen(ws);
        char in[sizeof(compact) + 8];
        memcpy(in, compact, i);
        memcpy(in + i, ws, wn);
        memcpy(in + i + wn, compact + i, n - i + 1);
        struct eb_ledger_bytes v[] = {{in, n + wn}};
        bool e;
        const char *got = payload("string", v, 1, &e);
        assert_true(e);
        if (got[0] == '"') {
            /* Only a split literal, number or escape turns it into text. */
            assert_true(escape || (!inside && i > 0 && i < n &&
                                   strchr("truenl-2.5e3", compact[i - 1]) &&
                                   strchr("truenl-2.5e3", compact[i])));
            continue;
        }
        assert_string_equal(got, inside ? in : compact);
    }
}

static void test_ledger_payload_other_text_becomes_a_json_string(void **state) {
    struct eb_ledger_bytes v[] = {B("order 7: \"paid\"\n")};
    assert_string_equal(payload("string", v, 1, NULL), "\"order 7: \\\"paid\\\"\\n\"");
    struct eb_ledger_bytes broken[] = {B("{\"a\":")}, empty[] = {B("")};
    assert_string_equal(payload("string", broken, 1, NULL), "\"{\\\"a\\\":\"");
    assert_string_equal(payload("string", empty, 1, NULL), "\"\"");
}

static void test_ledger_payload_deeper_than_the_encoder_allows_becomes_a_string(void **state) {
    char deep[1200];
    for (int i = 0; i < 600; i++) {
        deep[i] = '[';
        deep[1199 - i] = ']';
    }
    struct eb_ledger_bytes v[] = {{deep, sizeof(deep)}};
    const char *out = payload("string", v, 1, NULL);
    assert_int_equal(out[0], '"');
    assert_int_equal(strlen(out), sizeof(deep) + 2);
}

static void test_ledger_payload_binary_string_is_base64(void **state) {
    struct eb_ledger_bytes v[] = {B("\xff\x00\x01")};
    assert_string_equal(payload("string", v, 1, NULL), "{\"base64\":\"/wAB\"}");
}

static void test_ledger_payload_hash_is_an_object_of_strings(void **state) {
    struct eb_ledger_bytes v[] = {B("sku"), B("A-1"), B("qty"), B("2"), B("note"), B("\"q\"")};
    assert_string_equal(payload("hash", v, 6, NULL),
                        "{\"sku\":\"A-1\",\"qty\":\"2\",\"note\":\"\\\"q\\\"\"}");
    assert_string_equal(payload("hash", NULL, 0, NULL), "{}");
}

static void test_ledger_payload_binary_hash_is_base64_throughout(void **state) {
    struct eb_ledger_bytes v[] = {B("sku"), B("\xff"), B("qty"), B("2")};
    assert_string_equal(payload("hash", v, 4, NULL),
                        "{\"base64\":{\"c2t1\":\"/w==\",\"cXR5\":\"Mg==\"}}");
}

static void test_ledger_payload_missing_or_other_types_are_null(void **state) {
    bool e = true;
    assert_string_equal(payload("missing", NULL, 0, &e), "null");
    assert_false(e);
    assert_string_equal(payload("list", NULL, 0, &e), "null");
    assert_false(e);
    struct eb_ledger_bytes odd[] = {B("field")};
    assert_string_equal(payload("hash", odd, 1, &e), "null");
    assert_false(e);
}

static void test_ledger_library_is_the_versioned_lua_source(void **state) {
    size_t len = 0;
    const char *lib = eb_ledger_library(&len);
    assert_true(len > 1000);
    assert_int_equal(strlen(lib), len);
    assert_memory_equal(lib, "#!lua name=eb_timers_v1\n", 24);
    const char *fns[] = {"eb1_arm", "eb1_disarm", "eb1_rearm", "eb1_claim",   "eb1_collect",
                         "eb1_ack", "eb1_due",    "eb1_renew", "eb1_observe", "eb1_drop"};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        char reg[64];
        snprintf(reg, sizeof(reg), "redis.register_function('%s'", fns[i]);
        assert_non_null(strstr(lib, reg));
    }
}

static void test_ledger_is_needed_only_for_ledgered_or_payload_routes(void **state) {
    struct eb_config_route routes[2] = {{.name = "a"}, {.name = "b"}};
    struct eb_config cfg = {.routes = routes, .nroutes = 2};
    assert_false(eb_ledger_needed(&cfg));
    routes[1].ledger = EB_LEDGER_OBSERVED;
    assert_true(eb_ledger_needed(&cfg));
    routes[1].ledger = EB_LEDGER_OFF;
    routes[0].payload = "{key}:payload";
    assert_true(eb_ledger_needed(&cfg));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ledger_key_is_prefix_plus_hash_tagged_route),
        cmocka_unit_test(test_ledger_bucket_key_tags_route_and_bucket),
        cmocka_unit_test(test_ledger_bucket_of_reads_the_first_hash_tag),
        cmocka_unit_test(test_ledger_bucket_of_refuses_what_no_ledger_is_named),
        cmocka_unit_test(test_ledger_bucket_key_and_a_key_naming_it_share_a_slot),
        cmocka_unit_test(test_ledger_slot_tags_hash_to_their_slot),
        cmocka_unit_test(test_ledger_slot_key_lives_in_its_slot),
        cmocka_unit_test(test_ledger_scan_pattern_escapes_glob_characters),
        cmocka_unit_test(test_ledger_payload_json_text_is_embedded_as_json),
        cmocka_unit_test(test_ledger_payload_json_with_newlines_is_embedded_compact),
        cmocka_unit_test(test_ledger_payload_json_keeps_whitespace_inside_strings),
        cmocka_unit_test(test_ledger_payload_json_compact_at_every_split_point),
        cmocka_unit_test(test_ledger_payload_other_text_becomes_a_json_string),
        cmocka_unit_test(test_ledger_payload_deeper_than_the_encoder_allows_becomes_a_string),
        cmocka_unit_test(test_ledger_payload_binary_string_is_base64),
        cmocka_unit_test(test_ledger_payload_hash_is_an_object_of_strings),
        cmocka_unit_test(test_ledger_payload_binary_hash_is_base64_throughout),
        cmocka_unit_test(test_ledger_payload_missing_or_other_types_are_null),
        cmocka_unit_test(test_ledger_library_is_the_versioned_lua_source),
        cmocka_unit_test(test_ledger_is_needed_only_for_ledgered_or_payload_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
