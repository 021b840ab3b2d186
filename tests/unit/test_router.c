/* test_router.c -- the router's contract (src/router.h): longest literal
 * prefix wins, captures, '*', escapes, event masks, ties, binary and huge
 * keys, key templates, and scale. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/json.h"
#include "core/notify.h"
#include "core/router.h"

#define EXPIRED (UINT64_C(1) << EB_EVENT_EXPIRED_ID)

static int ev(const char *name) {
    int id = eb_notify_event_id(name, strlen(name));
    assert_true(id >= 0);
    return id;
}

static uint64_t bit(const char *name) {
    return UINT64_C(1) << ev(name);
}

/* Build a router or fail the test with its message. */
static eb_router_t *build(const struct eb_router_rule *rules, size_t n) {
    char err[512] = "";
    size_t bad = 0;
    eb_router_t *r = eb_router_new(rules, n, &bad, err, sizeof(err));
    if (!r)
        fail_msg("eb_router_new: %s (rule %zu)", err, bad);
    return r;
}

/* Match a C-string key for "expired"; returns the rule index or -1. */
static long match_str(const eb_router_t *r, const char *key, struct eb_match *m) {
    if (!eb_router_match(r, key, strlen(key), EB_EVENT_EXPIRED_ID, m))
        return -1;
    return (long)m->rule;
}

static void assert_cap(const struct eb_match *m, size_t i, const char *name, const char *value) {
    assert_true(i < m->ncaps);
    assert_string_equal(m->caps[i].name, name);
    assert_int_equal(m->caps[i].value_len, strlen(value));
    assert_memory_equal(m->caps[i].value, value, strlen(value));
}

/* ---- matching --------------------------------------------------------- */

static void test_router_longest_prefix_wins(void **state) {
    struct eb_router_rule rules[] = {
        {"orders", "order:*", NULL, EXPIRED, NULL},
        {"confirm", "order:confirm:{id}", NULL, EXPIRED, NULL},
        {"all", "*", NULL, EXPIRED, NULL},
    };
    eb_router_t *r = build(rules, 3);
    struct eb_match m;
    assert_int_equal(match_str(r, "order:confirm:7", &m), 1);
    assert_string_equal(m.route, "confirm");
    assert_int_equal(match_str(r, "order:paid:7", &m), 0);
    assert_int_equal(match_str(r, "user:1", &m), 2);
    eb_router_destroy(r);
}

static void test_router_match_returns_opaque_and_route_name(void **state) {
    int tag = 42;
    struct eb_router_rule rules[] = {{"r1", "k:{id}", NULL, EXPIRED, &tag}};
    eb_router_t *r = build(rules, 1);
    struct eb_match m;
    assert_int_equal(match_str(r, "k:1", &m), 0);
    assert_ptr_equal(m.opaque, &tag);
    assert_string_equal(m.route, "r1");
    assert_int_equal(eb_router_rule_count(r), 1);
    eb_router_destroy(r);
}

static void test_router_captures_are_extracted_in_order(void **state) {
    struct eb_router_rule rules[] = {
        {"r", "shop:{tenant}:order:{order_id}:v1", NULL, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 1);
    struct eb_match m;
    assert_int_equal(match_str(r, "shop:acme:order:42:v1", &m), 0);
    assert_int_equal(m.ncaps, 2);
    assert_cap(&m, 0, "tenant", "acme");
    assert_cap(&m, 1, "order_id", "42");
    eb_router_destroy(r);
}

static void test_router_capture_ends_at_first_occurrence_of_next_literal(void **state) {
    struct eb_router_rule rules[] = {{"r", "a:{x}:{y}", NULL, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 1);
    struct eb_match m;
    assert_int_equal(match_str(r, "a:1:2:3", &m), 0);
    assert_cap(&m, 0, "x", "1");
    assert_cap(&m, 1, "y", "2:3");
    eb_router_destroy(r);
}

static void test_router_trailing_capture_takes_rest(void **state) {
    struct eb_router_rule rules[] = {
        {"r", "laravel_cache:ORDER_CONFIRM:{order_id}", NULL, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 1);
    struct eb_match m;
    assert_int_equal(match_str(r, "laravel_cache:ORDER_CONFIRM:7:x:y", &m), 0);
    assert_cap(&m, 0, "order_id", "7:x:y");
    eb_router_destroy(r);
}

static void test_router_capture_needs_at_least_one_byte(void **state) {
    struct eb_router_rule rules[] = {{"end", "a:{x}", NULL, EXPIRED, NULL},
                                     {"mid", "b:{x}:c", NULL, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 2);
    struct eb_match m;
    assert_int_equal(match_str(r, "a:", &m), -1);
    assert_int_equal(match_str(r, "b::c", &m), -1);
    assert_int_equal(match_str(r, "b:::c", &m), 1);
    assert_cap(&m, 0, "x", ":");
    eb_router_destroy(r);
}

static void test_router_pattern_must_match_whole_key(void **state) {
    struct eb_router_rule rules[] = {{"lit", "exact:key", NULL, EXPIRED, NULL},
                                     {"mid", "x:{id}:y", NULL, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 2);
    struct eb_match m;
    assert_int_equal(match_str(r, "exact:key", &m), 0);
    assert_int_equal(m.ncaps, 0);
    assert_int_equal(match_str(r, "exact:keys", &m), -1);
    assert_int_equal(match_str(r, "exact:ke", &m), -1);
    assert_int_equal(match_str(r, "x:1:y", &m), 1);
    assert_int_equal(match_str(r, "x:1:yz", &m), -1);
    eb_router_destroy(r);
}

static void test_router_star_matches_any_remainder(void **state) {
    struct eb_router_rule rules[] = {{"sess", "session:*", NULL, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 1);
    struct eb_match m;
    assert_int_equal(match_str(r, "session:", &m), 0);
    assert_int_equal(match_str(r, "session:abc:def", &m), 0);
    assert_int_equal(m.ncaps, 0);
    assert_int_equal(match_str(r, "sessio", &m), -1);
    assert_int_equal(match_str(r, "other", &m), -1);
    eb_router_destroy(r);
}

static void test_router_star_after_literal_after_capture(void **state) {
    struct eb_router_rule rules[] = {{"r", "t:{tenant}:*", NULL, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 1);
    struct eb_match m;
    assert_int_equal(match_str(r, "t:acme:anything:else", &m), 0);
    assert_cap(&m, 0, "tenant", "acme");
    assert_int_equal(match_str(r, "t:acme", &m), -1);
    eb_router_destroy(r);
}

static void test_router_escaped_braces_are_literal(void **state) {
    struct eb_router_rule rules[] = {{"r", "tpl:{{x}}:{id}", NULL, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 1);
    struct eb_match m;
    assert_int_equal(match_str(r, "tpl:{x}:5", &m), 0);
    assert_cap(&m, 0, "id", "5");
    assert_int_equal(match_str(r, "tpl:x:5", &m), -1);
    eb_router_destroy(r);
}

static void test_router_event_mask_filters_routes(void **state) {
    struct eb_router_rule rules[] = {
        {"expiry", "cache:{id}", NULL, EXPIRED, NULL},
        {"eviction", "cache:{id}", NULL, bit("evicted"), NULL},
    };
    eb_router_t *r = build(rules, 2);
    struct eb_match m;
    assert_true(eb_router_match(r, "cache:1", 7, EB_EVENT_EXPIRED_ID, &m));
    assert_string_equal(m.route, "expiry");
    assert_true(eb_router_match(r, "cache:1", 7, ev("evicted"), &m));
    assert_string_equal(m.route, "eviction");
    assert_false(eb_router_match(r, "cache:1", 7, ev("del"), &m));
    assert_false(eb_router_match(r, "cache:1", 7, -1, &m));
    assert_false(eb_router_match(r, "cache:1", 7, 64, &m));
    eb_router_destroy(r);
}

static void test_router_event_mask_falls_back_to_shorter_prefix(void **state) {
    struct eb_router_rule rules[] = {
        {"any", "cache:*", NULL, EXPIRED | bit("del"), NULL},
        {"evict", "cache:hot:*", NULL, bit("evicted"), NULL},
    };
    eb_router_t *r = build(rules, 2);
    struct eb_match m;
    assert_int_equal(match_str(r, "cache:hot:1", &m), 0);
    eb_router_destroy(r);
}

static void test_router_falls_back_to_shorter_prefix_when_longer_pattern_fails(void **state) {
    struct eb_router_rule rules[] = {
        {"generic", "order:{rest}", NULL, EXPIRED, NULL},
        {"confirm", "order:confirm:{id}:payment", NULL, EXPIRED, NULL},
        {"mid", "order:con*", NULL, bit("evicted"), NULL},
    };
    eb_router_t *r = build(rules, 3);
    struct eb_match m;
    assert_int_equal(match_str(r, "order:confirm:7:payment", &m), 1);
    assert_cap(&m, 0, "id", "7");
    assert_int_equal(match_str(r, "order:confirm:7", &m), 0);
    assert_int_equal(m.ncaps, 1);
    assert_cap(&m, 0, "rest", "confirm:7");
    eb_router_destroy(r);
}

static void test_router_no_match_returns_false(void **state) {
    struct eb_router_rule rules[] = {{"r", "a:{id}", NULL, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 1);
    struct eb_match m;
    assert_int_equal(match_str(r, "b:1", &m), -1);
    assert_int_equal(match_str(r, "", &m), -1);
    assert_int_equal(match_str(r, "a", &m), -1);
    eb_router_destroy(r);
}

static void test_router_empty_prefix_routes_catch_everything(void **state) {
    struct eb_router_rule rules[] = {{"whole", "{k}", NULL, EXPIRED, NULL},
                                     {"rest", "*", NULL, bit("evicted"), NULL}};
    eb_router_t *r = build(rules, 2);
    struct eb_match m;
    assert_int_equal(match_str(r, "anything", &m), 0);
    assert_cap(&m, 0, "k", "anything");
    assert_true(eb_router_match(r, "", 0, ev("evicted"), &m));
    assert_int_equal(m.rule, 1);
    assert_false(eb_router_match(r, "", 0, EB_EVENT_EXPIRED_ID, &m));
    eb_router_destroy(r);
}

static void test_router_binary_key_with_nul(void **state) {
    struct eb_router_rule rules[] = {{"bin", "bin:{id}:end", NULL, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 1);
    static const char key[] = "bin:\0\x01\xff:end";
    struct eb_match m;
    assert_true(eb_router_match(r, key, sizeof(key) - 1, EB_EVENT_EXPIRED_ID, &m));
    assert_int_equal(m.caps[0].value_len, 3);
    assert_memory_equal(m.caps[0].value, "\0\x01\xff", 3);
    /* A NUL inside the literal prefix does not match it. */
    static const char nul_prefix[] = "bi\0:x:end";
    assert_false(eb_router_match(r, nul_prefix, sizeof(nul_prefix) - 1, 0, &m));
    eb_router_destroy(r);
}

static void test_router_megabyte_key(void **state) {
    struct eb_router_rule rules[] = {{"big", "big:{a}:end", NULL, EXPIRED, NULL},
                                     {"tail", "big:*", NULL, bit("evicted"), NULL}};
    eb_router_t *r = build(rules, 2);
    size_t len = 1024 * 1024;
    char *key = malloc(len);
    assert_non_null(key);
    memcpy(key, "big:", 4);
    memset(key + 4, 'x', len - 8);
    memcpy(key + len - 4, ":end", 4);
    struct eb_match m;
    assert_true(eb_router_match(r, key, len, EB_EVENT_EXPIRED_ID, &m));
    assert_int_equal(m.caps[0].value_len, len - 8);
    assert_ptr_equal(m.caps[0].value, key + 4);
    key[len - 1] = '!';
    assert_false(eb_router_match(r, key, len, EB_EVENT_EXPIRED_ID, &m));
    assert_true(eb_router_match(r, key, len, ev("evicted"), &m));
    free(key);
    eb_router_destroy(r);
}

/* ---- ties ------------------------------------------------------------- */

static void test_router_tie_rejected_naming_both_routes(void **state) {
    struct eb_router_rule rules[] = {
        {"first", "order:{id}", NULL, EXPIRED, NULL},
        {"other", "user:{id}", NULL, EXPIRED, NULL},
        {"second", "order:*", NULL, EXPIRED | bit("del"), NULL},
    };
    char err[512];
    size_t bad = 99;
    assert_null(eb_router_new(rules, 3, &bad, err, sizeof(err)));
    assert_int_equal(bad, 2);
    assert_string_equal(err, "routes 'first' and 'second' have the same literal prefix \"order:\" "
                             "and both take event 'expired'; make one prefix longer or split "
                             "their events");
}

static void test_router_same_prefix_with_disjoint_events_is_not_a_tie(void **state) {
    struct eb_router_rule rules[] = {
        {"a", "order:{id}", NULL, EXPIRED, NULL},
        {"b", "order:*", NULL, bit("del") | bit("evicted"), NULL},
    };
    eb_router_t *r = build(rules, 2);
    eb_router_destroy(r);
}

static void test_router_tie_names_the_shared_event(void **state) {
    struct eb_router_rule rules[] = {
        {"a", "x:{id}", NULL, EXPIRED | bit("evicted"), NULL},
        {"b", "x:{other}", NULL, bit("evicted"), NULL},
    };
    char err[512];
    assert_null(eb_router_new(rules, 2, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "both take event 'evicted'"));
}

static void test_router_rejects_invalid_pattern_in_new(void **state) {
    struct eb_router_rule rules[] = {{"ok", "a:*", NULL, EXPIRED, NULL},
                                     {"bad", "b:{x}{y}", NULL, EXPIRED, NULL}};
    char err[512];
    size_t bad = 0;
    assert_null(eb_router_new(rules, 2, &bad, err, sizeof(err)));
    assert_int_equal(bad, 1);
    assert_non_null(strstr(err, "route 'bad'"));
    assert_non_null(strstr(err, "ambiguous"));
}

/* ---- pattern validation ----------------------------------------------- */

static void expect_pattern_error(const char *pattern, size_t offset, const char *text) {
    char err[512] = "";
    size_t off = 999;
    assert_int_equal(eb_router_check_pattern(pattern, &off, err, sizeof(err)), EB_ECONFIG);
    if (!strstr(err, text))
        fail_msg("pattern '%s': '%s' does not contain '%s'", pattern, err, text);
    assert_int_equal(off, offset);
}

static void test_router_pattern_adjacent_captures_are_ambiguous(void **state) {
    expect_pattern_error("a:{x}{y}", 5,
                         "captures '{x}' and '{y}' have no literal text between them");
}

static void test_router_pattern_capture_before_star_is_ambiguous(void **state) {
    expect_pattern_error("a:{x}*", 5, "'*' right after capture '{x}' is ambiguous");
}

static void test_router_pattern_star_only_at_end(void **state) {
    expect_pattern_error("a*b", 1, "expected it only as the last character");
}

static void test_router_pattern_capture_name_rules(void **state) {
    expect_pattern_error("a:{}", 2, "empty capture");
    expect_pattern_error("a:{1x}", 3, "invalid capture name '1x'");
    expect_pattern_error("a:{x-y}", 4, "invalid capture name 'x-y'");
    expect_pattern_error("a:{key}", 3, "capture name 'key' is a template built-in");
    expect_pattern_error("a:{route}", 3, "template built-in");
    expect_pattern_error("a:{x}:{x}", 7, "capture '{x}' appears twice");
}

static void test_router_pattern_unbalanced_braces(void **state) {
    expect_pattern_error("a:{x", 2, "unclosed '{'");
    expect_pattern_error("a:}", 2, "unmatched '}'");
    expect_pattern_error("a:{x{y}}", 2, "unclosed '{'");
}

static void test_router_pattern_empty(void **state) {
    expect_pattern_error("", 0, "empty pattern");
}

static void test_router_pattern_too_many_captures(void **state) {
    char p[256] = "";
    for (int i = 0; i <= EB_ROUTER_MAX_CAPTURES; i++) {
        char part[16];
        snprintf(part, sizeof(part), "{c%d}:", i);
        strcat(p, part);
    }
    expect_pattern_error(p, 10 * 5 + 6 * 6, "more than 16 captures");
}

static void test_router_pattern_valid_ones_pass(void **state) {
    const char *ok[] = {"a", "*", "{x}", "a:{x}", "a:{x}:b:{y}", "{{literal}}:*", "a:{_x1}"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char err[256];
        size_t off;
        assert_int_equal(eb_router_check_pattern(ok[i], &off, err, sizeof(err)), 0);
    }
}

static void test_router_literal_prefix_unescapes(void **state) {
    char out[64];
    eb_router_literal_prefix("laravel_cache:ORDER_CONFIRM:{order_id}", out, sizeof(out));
    assert_string_equal(out, "laravel_cache:ORDER_CONFIRM:");
    eb_router_literal_prefix("a{{b}}c:*", out, sizeof(out));
    assert_string_equal(out, "a{b}c:");
    eb_router_literal_prefix("{x}", out, sizeof(out));
    assert_string_equal(out, "");
    eb_router_literal_prefix("abcdef", out, 4);
    assert_string_equal(out, "abc");
}

/* ---- templates -------------------------------------------------------- */

/* Render the key for `key` routed through a one-rule router. */
static void render(const char *pattern, const char *tmpl, const char *key, int db,
                   const char *expect) {
    struct eb_router_rule rules[] = {{"order-timeout", pattern, tmpl, EXPIRED, NULL}};
    eb_router_t *r = build(rules, 1);
    struct eb_match m;
    struct eb_buf out = EB_BUF_INIT;
    assert_true(eb_router_match(r, key, strlen(key), EB_EVENT_EXPIRED_ID, &m));
    eb_router_render_key(r, &m, key, strlen(key), db, "expired", &out);
    assert_true(eb_buf_ok(&out));
    assert_int_equal(out.len, strlen(expect));
    assert_memory_equal(out.data, expect, out.len);
    eb_buf_free(&out);
    eb_router_destroy(r);
}

static void test_router_render_without_template_is_the_redis_key(void **state) {
    render("o:{id}", NULL, "o:7", 0, "o:7");
}

static void test_router_render_capture(void **state) {
    render("o:{tenant}:{id}", "{id}", "o:acme:7", 0, "7");
    render("o:{tenant}:{id}", "{tenant}/{id}", "o:acme:7", 0, "acme/7");
}

static void test_router_render_key_variable(void **state) {
    render("o:{id}", "k={key}", "o:7", 0, "k=o:7");
}

static void test_router_render_db_variable(void **state) {
    render("o:{id}", "{db}:{id}", "o:7", 12, "12:7");
}

static void test_router_render_event_variable(void **state) {
    render("o:{id}", "{event}-{id}", "o:7", 0, "expired-7");
}

static void test_router_render_route_variable(void **state) {
    render("o:{id}", "{route}", "o:7", 0, "order-timeout");
}

static void test_router_render_escaped_braces(void **state) {
    render("o:{id}", "{{{id}}}", "o:7", 0, "{7}");
}

static void test_router_render_binary_capture(void **state) {
    struct eb_router_rule rules[] = {{"b", "b:{id}", "<{id}>", EXPIRED, NULL}};
    eb_router_t *r = build(rules, 1);
    struct eb_match m;
    struct eb_buf out = EB_BUF_INIT;
    static const char key[] = "b:\0z";
    assert_true(eb_router_match(r, key, 4, EB_EVENT_EXPIRED_ID, &m));
    eb_router_render_key(r, &m, key, 4, 0, "expired", &out);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "<\0z>", 4);
    eb_buf_free(&out);
    eb_router_destroy(r);
}

static void test_router_template_unknown_variable_lists_captures(void **state) {
    char err[512];
    size_t off = 0;
    assert_int_equal(
        eb_router_check_template("id={oder_id}", "o:{order_id}:{sku}", &off, err, sizeof(err)),
        EB_ECONFIG);
    assert_int_equal(off, 3);
    assert_string_equal(err, "unknown variable '{oder_id}'; expected a capture of the pattern "
                             "({order_id}, {sku}) or one of {key}, {db}, {event}, {route}");
}

static void test_router_template_unknown_variable_without_captures(void **state) {
    char err[512];
    size_t off = 0;
    assert_int_equal(eb_router_check_template("{id}", "o:*", &off, err, sizeof(err)), EB_ECONFIG);
    assert_non_null(strstr(err, "(the pattern has none)"));
}

static void test_router_template_syntax_errors(void **state) {
    char err[512];
    size_t off = 0;
    assert_int_equal(eb_router_check_template("a{id", "o:{id}", &off, err, sizeof(err)),
                     EB_ECONFIG);
    assert_int_equal(off, 1);
    assert_non_null(strstr(err, "unclosed '{'"));
    assert_int_equal(eb_router_check_template("a}", "o:{id}", &off, err, sizeof(err)), EB_ECONFIG);
    assert_int_equal(off, 1);
    assert_int_equal(eb_router_check_template("", "o:{id}", &off, err, sizeof(err)), EB_ECONFIG);
    assert_non_null(strstr(err, "empty template"));
    assert_int_equal(eb_router_check_template("{key}:{db}:{event}:{route}:{id}", "o:{id}", &off,
                                              err, sizeof(err)),
                     0);
}

static void test_router_new_rejects_bad_template(void **state) {
    struct eb_router_rule rules[] = {{"r", "o:{id}", "{nope}", EXPIRED, NULL}};
    char err[512];
    size_t bad = 9;
    assert_null(eb_router_new(rules, 1, &bad, err, sizeof(err)));
    assert_int_equal(bad, 0);
    assert_non_null(strstr(err, "route 'r': key: unknown variable '{nope}'"));
}

/* ---- scale ------------------------------------------------------------ */

static void test_router_10000_routes_build_and_match(void **state) {
    enum { N = 10000 };
    struct eb_router_rule *rules = calloc(N, sizeof(*rules));
    char(*patterns)[64] = calloc(N, sizeof(*patterns));
    char(*names)[32] = calloc(N, sizeof(*names));
    assert_non_null(rules);
    assert_non_null(patterns);
    assert_non_null(names);
    for (int i = 0; i < N; i++) {
        /* Shared prefixes at several depths, so the trie splits edges. */
        snprintf(patterns[i], sizeof(patterns[i]), "svc%d:tenant%d:order:{id}", i % 97, i);
        snprintf(names[i], sizeof(names[i]), "route-%d", i);
        rules[i] = (struct eb_router_rule){names[i], patterns[i], NULL, EXPIRED, NULL};
    }
    eb_router_t *r = build(rules, N);
    assert_int_equal(eb_router_rule_count(r), N);
    for (int i = 0; i < N; i++) {
        char key[96];
        struct eb_match m;
        snprintf(key, sizeof(key), "svc%d:tenant%d:order:%d", i % 97, i, i * 7);
        assert_int_equal(match_str(r, key, &m), i);
        char id[16];
        snprintf(id, sizeof(id), "%d", i * 7);
        assert_cap(&m, 0, "id", id);
        snprintf(key, sizeof(key), "svc%d:tenant%d:orders:%d", i % 97, i, i);
        assert_int_equal(match_str(r, key, &m), -1);
    }
    eb_router_destroy(r);
    free(names);
    free(patterns);
    free(rules);
}

static void test_router_nested_prefix_chain(void **state) {
    /* "a", "aa", "aaa", ...: every node holds a rule; lookups climb the
     * chain of `up` links from the deepest candidate. */
    enum { N = 300 };
    static char pats[N][N + 4];
    static char names[N][16];
    struct eb_router_rule rules[N];
    for (int i = 0; i < N; i++) {
        memset(pats[i], 'a', (size_t)i + 1);
        memcpy(pats[i] + i + 1, "{x}", 4);
        snprintf(names[i], sizeof(names[i]), "r%d", i);
        rules[i] = (struct eb_router_rule){names[i], pats[i], NULL, EXPIRED, NULL};
    }
    eb_router_t *r = build(rules, N);
    struct eb_match m;
    assert_int_equal(match_str(r, "aaab", &m), 2);
    assert_cap(&m, 0, "x", "b");
    eb_router_destroy(r);
}

static void test_router_many_failing_candidates_on_a_huge_key_stay_cheap(void **state) {
    /* 500 nested prefixes "a", "aa", ... each "{x}:end", and a 1 MiB key of
     * 'a's: every prefix is a candidate and every pattern fails. Each must
     * fail on its literal tail, not by scanning the key. */
    enum { N = 500 };
    static char pats[N][N + 8];
    static char names[N][16];
    struct eb_router_rule *rules = calloc(N, sizeof(*rules));
    assert_non_null(rules);
    for (int i = 0; i < N; i++) {
        memset(pats[i], 'a', (size_t)i + 1);
        memcpy(pats[i] + i + 1, "{x}:end", 8);
        snprintf(names[i], sizeof(names[i]), "r%d", i);
        rules[i] = (struct eb_router_rule){names[i], pats[i], NULL, EXPIRED, NULL};
    }
    eb_router_t *r = build(rules, N);
    size_t len = 1024 * 1024;
    char *key = malloc(len);
    assert_non_null(key);
    memset(key, 'a', len);
    struct eb_match m;
    clock_t t0 = clock();
    for (int i = 0; i < 20; i++)
        assert_false(eb_router_match(r, key, len, EB_EVENT_EXPIRED_ID, &m));
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 1.0);
    free(key);
    eb_router_destroy(r);
    free(rules);
}

static void test_router_destroy_null_is_noop(void **state) {
    eb_router_destroy(NULL);
    assert_int_equal(eb_router_rule_count(NULL), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_longest_prefix_wins),
        cmocka_unit_test(test_router_match_returns_opaque_and_route_name),
        cmocka_unit_test(test_router_captures_are_extracted_in_order),
        cmocka_unit_test(test_router_capture_ends_at_first_occurrence_of_next_literal),
        cmocka_unit_test(test_router_trailing_capture_takes_rest),
        cmocka_unit_test(test_router_capture_needs_at_least_one_byte),
        cmocka_unit_test(test_router_pattern_must_match_whole_key),
        cmocka_unit_test(test_router_star_matches_any_remainder),
        cmocka_unit_test(test_router_star_after_literal_after_capture),
        cmocka_unit_test(test_router_escaped_braces_are_literal),
        cmocka_unit_test(test_router_event_mask_filters_routes),
        cmocka_unit_test(test_router_event_mask_falls_back_to_shorter_prefix),
        cmocka_unit_test(test_router_falls_back_to_shorter_prefix_when_longer_pattern_fails),
        cmocka_unit_test(test_router_no_match_returns_false),
        cmocka_unit_test(test_router_empty_prefix_routes_catch_everything),
        cmocka_unit_test(test_router_binary_key_with_nul),
        cmocka_unit_test(test_router_megabyte_key),
        cmocka_unit_test(test_router_tie_rejected_naming_both_routes),
        cmocka_unit_test(test_router_same_prefix_with_disjoint_events_is_not_a_tie),
        cmocka_unit_test(test_router_tie_names_the_shared_event),
        cmocka_unit_test(test_router_rejects_invalid_pattern_in_new),
        cmocka_unit_test(test_router_pattern_adjacent_captures_are_ambiguous),
        cmocka_unit_test(test_router_pattern_capture_before_star_is_ambiguous),
        cmocka_unit_test(test_router_pattern_star_only_at_end),
        cmocka_unit_test(test_router_pattern_capture_name_rules),
        cmocka_unit_test(test_router_pattern_unbalanced_braces),
        cmocka_unit_test(test_router_pattern_empty),
        cmocka_unit_test(test_router_pattern_too_many_captures),
        cmocka_unit_test(test_router_pattern_valid_ones_pass),
        cmocka_unit_test(test_router_literal_prefix_unescapes),
        cmocka_unit_test(test_router_render_without_template_is_the_redis_key),
        cmocka_unit_test(test_router_render_capture),
        cmocka_unit_test(test_router_render_key_variable),
        cmocka_unit_test(test_router_render_db_variable),
        cmocka_unit_test(test_router_render_event_variable),
        cmocka_unit_test(test_router_render_route_variable),
        cmocka_unit_test(test_router_render_escaped_braces),
        cmocka_unit_test(test_router_render_binary_capture),
        cmocka_unit_test(test_router_template_unknown_variable_lists_captures),
        cmocka_unit_test(test_router_template_unknown_variable_without_captures),
        cmocka_unit_test(test_router_template_syntax_errors),
        cmocka_unit_test(test_router_new_rejects_bad_template),
        cmocka_unit_test(test_router_10000_routes_build_and_match),
        cmocka_unit_test(test_router_nested_prefix_chain),
        cmocka_unit_test(test_router_many_failing_candidates_on_a_huge_key_stay_cheap),
        cmocka_unit_test(test_router_destroy_null_is_noop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
