/* test_plugin_host.c -- the plugin host (src/plugin/plugin_host.h) with
 * the shipped plugins (filter, enrich, mask, avro) and the test-only
 * `faulty` one, loaded from the build tree as the daemon loads them: what
 * each does to an event, what a failure costs, that a crash stays in its
 * (forked) child, and that a reload keeps unchanged instances.
 *
 * Needs EB_TEST_PLUGIN_DIR and EB_TEST_BAD_PLUGIN_DIR (ctest sets them).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/event.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/notify.h"
#include "plugin/plugin_host.h"

static char errbuf[8192];
static eb_plugin_loader_t *loader;
static eb_metrics_t *metrics;

struct fx {
    struct eb_config *cfg;
    eb_plugin_set_t *set;
    struct eb_plugin_event pe;
    struct eb_encoded enc;
    struct eb_match m;
};

#define HEAD                                                                                       \
    "redis:\n  url: redis://localhost\nkafka:\n  brokers: localhost:9092\n"                        \
    "plugin_dir: ${EB_TEST_PLUGIN_DIR}\nplugins:\n"

static struct eb_config *load_with(eb_plugin_loader_t *l, const char *yaml) {
    struct eb_config_checks checks = {.plugins = eb_plugin_loader_check_config,
                                      .plugins_opaque = l};
    struct eb_config *cfg = NULL;
    if (eb_config_load_string(yaml, strlen(yaml), "t.yaml", &checks, &cfg, errbuf,
                              sizeof(errbuf)) != 0)
        fail_msg("config does not load:\n%s", errbuf);
    return cfg;
}

static struct eb_config *load(const char *yaml) {
    return load_with(loader, yaml);
}

/* The error a config that must not load gives (errbuf). */
static const char *load_err(const char *yaml) {
    struct eb_config_checks checks = {.plugins = eb_plugin_loader_check_config,
                                      .plugins_opaque = loader};
    struct eb_config *cfg = NULL;
    if (eb_config_load_string(yaml, strlen(yaml), "t.yaml", &checks, &cfg, errbuf,
                              sizeof(errbuf)) == 0)
        fail_msg("config loads but must not:\n%s", yaml);
    return errbuf;
}

/* One route "r" (match "order:{tenant}:{id}", topic "orders") through the
 * plugins named in `chain`, with the plugin instances in `plugins`. */
static void fx_setup(struct fx *f, const char *plugins, const char *chain, bool payload) {
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             HEAD "%sroutes:\n  - name: r\n    match: \"order:{tenant}:{id}\"\n"
                  "    topic: orders\n    headers: { x-a: \"1\" }\n%s    plugins: [%s]\n",
             plugins, payload ? "    payload: \"{key}:p\"\n" : "", chain);
    memset(f, 0, sizeof(*f));
    f->cfg = load(yaml);
    f->set = eb_plugin_set_new(loader, f->cfg, NULL, errbuf, sizeof(errbuf));
    if (!f->set)
        fail_msg("set: %s", errbuf);
    eb_plugin_event_init(&f->pe);
    eb_event_encoded_init(&f->enc);
}

static void fx_teardown(struct fx *f) {
    eb_plugin_event_free(&f->pe);
    eb_event_encoded_free(&f->enc);
    eb_plugin_set_destroy(f->set);
    eb_config_free(f->cfg);
}

/* Run key (and payload JSON, or NULL) through the route; returns the
 * chain's result. */
static int run(struct fx *f, const char *key, const char *payload) {
    assert_true(eb_router_match(f->cfg->router, key, strlen(key), EB_EVENT_EXPIRED_ID, &f->m));
    struct eb_event ev = {
        .event = "expired",
        .key = key,
        .key_len = strlen(key),
        .db = 0,
        .source = "redis://h:6379/0",
        .route = "r",
        .params = f->m.caps,
        .nparams = f->m.ncaps,
        .time_us = 1795000000000000,
        .deadline_ms = -1,
        .has_payload = payload != NULL,
        .payload_json = payload,
        .payload_len = payload ? strlen(payload) : 0,
    };
    const struct eb_config_route *r = &f->cfg->routes[0];
    static struct eb_header hs[1] = {{"x-a", "1", 1}};
    eb_plugin_event_begin(&f->pe, &ev, r->topic, f->cfg->router, &f->m, hs, 1);
    return eb_plugin_chain_run(eb_plugin_set_chain(f->set, 0), &f->pe);
}

/* The CloudEvent the pipeline would send after a CONTINUE. */
static const char *encoded(struct fx *f) {
    size_t nh;
    const struct eb_header *hs = eb_plugin_event_headers(&f->pe, &nh);
    assert_int_equal(eb_event_encode(&f->pe.ev, EB_FORMAT_CLOUDEVENTS, hs, nh, &f->enc), 0);
    return f->enc.value.data;
}

static void assert_contains(const char *hay, const char *needle) {
    if (!strstr(hay, needle))
        fail_msg("'%s'\ndoes not contain\n'%s'", hay, needle);
}

/* ---- filter ------------------------------------------------------------ */

#define FILTER                                                                                     \
    "  - name: f\n    path: filter\n    settings:\n      drop:\n        - key: \"order:test:*\"\n" \
    "        - field: payload.status\n          equals: paid\n"                                   \
    "        - field: params.tenant\n          in: [demo, sandbox]\n"

static void test_plugin_host_filter_drops_by_key_glob(void **state) {
    struct fx f;
    fx_setup(&f, FILTER, "f", false);
    assert_int_equal(run(&f, "order:test:1", NULL), EB_PLUGIN_RUN_DROP);
    assert_string_equal(f.pe.failed, "f");
    assert_int_equal(run(&f, "order:shop:1", NULL), EB_PLUGIN_RUN_CONTINUE);
    fx_teardown(&f);
}

static void test_plugin_host_filter_drops_by_payload_field(void **state) {
    struct fx f;
    fx_setup(&f, FILTER, "f", true);
    assert_int_equal(run(&f, "order:shop:1", "{\"status\":\"paid\"}"), EB_PLUGIN_RUN_DROP);
    assert_int_equal(run(&f, "order:shop:1", "{\"status\":\"pending\"}"), EB_PLUGIN_RUN_CONTINUE);
    assert_int_equal(run(&f, "order:shop:1", "null"), EB_PLUGIN_RUN_CONTINUE);
    fx_teardown(&f);
}

static void test_plugin_host_filter_drops_by_capture_in_list(void **state) {
    struct fx f;
    fx_setup(&f, FILTER, "f", false);
    assert_int_equal(run(&f, "order:sandbox:1", NULL), EB_PLUGIN_RUN_DROP);
    assert_int_equal(run(&f, "order:demo:1", NULL), EB_PLUGIN_RUN_DROP);
    assert_int_equal(run(&f, "order:prod:1", NULL), EB_PLUGIN_RUN_CONTINUE);
    fx_teardown(&f);
}

static void test_plugin_host_filter_keep_drops_what_matches_no_keep_rule(void **state) {
    struct fx f;
    fx_setup(&f,
             "  - name: k\n    path: filter\n    settings:\n      keep:\n        - key: "
             "\"order:prod:*\"\n",
             "k", false);
    assert_int_equal(run(&f, "order:prod:1", NULL), EB_PLUGIN_RUN_CONTINUE);
    assert_int_equal(run(&f, "order:dev:1", NULL), EB_PLUGIN_RUN_DROP);
    fx_teardown(&f);
}

/* ---- enrich ------------------------------------------------------------ */

#define ENRICH                                                                                     \
    "  - name: e\n    path: enrich\n    settings:\n"                                               \
    "      fields: { region: eu-west, ref: \"{tenant}/{id}\", who: \"{payload.user.name}\" }\n"   \
    "      headers: { x-tenant: \"{tenant}\" }\n"                                                 \
    "      topic: \"orders.{tenant}\"\n      kafka_key: \"{id}@{db}\"\n"

static void test_plugin_host_enrich_adds_static_and_templated_fields(void **state) {
    struct fx f;
    fx_setup(&f, ENRICH, "e", true);
    assert_int_equal(run(&f, "order:shop:7", "{\"user\":{\"name\":\"Ann \\\"A\\\"\"}}"),
                     EB_PLUGIN_RUN_CONTINUE);
    const char *v = encoded(&f);
    /* In data.ext, after the core members (docs/event.md, "Extensions"). */
    assert_contains(v, ",\"payload\":{\"user\":{\"name\":\"Ann \\\"A\\\"\"}},\"ext\":{"
                       "\"region\":\"eu-west\",\"ref\":\"shop/7\",\"who\":\"Ann \\\"A\\\"\"}}}");
    fx_teardown(&f);
}

/* A later plugin reads an added field as ext.NAME; core names are free
 * for ext (they cannot collide), a name ext already has is refused. */
static void test_plugin_host_added_fields_are_read_back_from_ext(void **state) {
    struct fx f;
    fx_setup(&f,
             "  - name: e\n    path: enrich\n    settings: { fields: { region: \"{tenant}\", "
             "key: k } }\n"
             "  - name: f\n    path: filter\n    settings: { drop: [{ field: ext.region, equals: "
             "test }, { field: region, exists: true }] }\n",
             "e, f", false);
    assert_int_equal(run(&f, "order:test:1", NULL), EB_PLUGIN_RUN_DROP);
    assert_int_equal(run(&f, "order:shop:1", NULL), EB_PLUGIN_RUN_CONTINUE);
    assert_contains(encoded(&f), "\"key\":\"order:shop:1\",");
    assert_contains(encoded(&f), ",\"ext\":{\"region\":\"shop\",\"key\":\"k\"}}}");
    fx_teardown(&f);
}

static void test_plugin_host_a_name_ext_already_has_is_refused(void **state) {
    struct fx f;
    fx_setup(&f,
             "  - name: e1\n    path: enrich\n    settings: { fields: { region: a } }\n"
             "  - name: e2\n    path: enrich\n    settings: { fields: { zone: z, region: b } }\n",
             "e1, e2", false);
    assert_int_equal(run(&f, "order:shop:1", NULL), EB_PLUGIN_RUN_ERROR);
    assert_string_equal(f.pe.failed, "e2");
    /* The refusal left what was added before intact and usable. */
    assert_contains(encoded(&f), ",\"ext\":{\"region\":\"a\",\"zone\":\"z\"}}}");
    fx_teardown(&f);
}

/* A bad value is reported at that value, down to the list item. */
static void test_plugin_host_mask_reports_a_bad_field_at_its_item(void **state) {
    const char *e = load_err(HEAD "  - name: m\n    path: mask\n    settings:\n"
                                  "      fields: [email, \"a..b\"]\n"
                                  "routes:\n  - name: r\n    match: \"o:{id}\"\n    topic: o\n"
                                  "    plugins: [m]\n");
    assert_contains(e, "t.yaml:10:23: invalid plugins[0].settings.fields[1]: 'a..b' is not a "
                       "field name or dotted path");
}

static void test_plugin_host_enrich_refuses_a_field_name_at_its_key(void **state) {
    const char *e = load_err(HEAD "  - name: e\n    path: enrich\n    settings:\n"
                                  "      fields: { ok: 1, \"a.b\": 2 }\n"
                                  "routes:\n  - name: r\n    match: \"o:{id}\"\n    topic: o\n"
                                  "    plugins: [e]\n");
    assert_contains(e, "t.yaml:10:24: invalid plugins[0].settings.fields.a.b: 'a.b' is not a "
                       "field name; expected 1 to 128 bytes without");
}

static void test_plugin_host_enrich_rewrites_topic_key_and_headers(void **state) {
    struct fx f;
    size_t klen, nh;
    fx_setup(&f, ENRICH, "e", true);
    assert_int_equal(run(&f, "order:shop:7", "{}"), EB_PLUGIN_RUN_CONTINUE);
    assert_true(f.pe.topic_changed);
    assert_string_equal(f.pe.topic, "orders.shop");
    const char *key = eb_plugin_event_key(&f.pe, &klen);
    assert_int_equal(klen, 3);
    assert_memory_equal(key, "7@0", 3);
    const struct eb_header *hs = eb_plugin_event_headers(&f.pe, &nh);
    assert_int_equal(nh, 2);
    assert_string_equal(hs[0].name, "x-a");
    assert_string_equal(hs[1].name, "x-tenant");
    assert_memory_equal(hs[1].value, "shop", 4);
    fx_teardown(&f);
}

static void test_plugin_host_fields_are_reset_between_events(void **state) {
    struct fx f;
    fx_setup(&f, ENRICH, "e", true);
    assert_int_equal(run(&f, "order:shop:7", "{}"), EB_PLUGIN_RUN_CONTINUE);
    assert_int_equal(run(&f, "order:shop:8", "{}"), EB_PLUGIN_RUN_CONTINUE);
    const char *v = encoded(&f);
    assert_non_null(strstr(v, "\"ref\":\"shop/8\""));
    assert_null(strstr(v, "shop/7"));
    fx_teardown(&f);
}

/* ---- mask -------------------------------------------------------------- */

static void test_plugin_host_mask_redacts_fields_at_any_depth(void **state) {
    struct fx f;
    fx_setup(&f, "  - name: m\n    path: mask\n    settings: { fields: [email, card.number] }\n",
             "m", true);
    assert_int_equal(run(&f, "order:shop:1",
                         "{\"email\":\"a@b.c\",\"items\":[{\"email\":\"x@y.z\"}],"
                         "\"card\":{\"number\":4111111111111111,\"exp\":\"12/30\"},"
                         "\"number\":5}"),
                     EB_PLUGIN_RUN_CONTINUE);
    size_t len;
    assert_non_null(f.pe.ev.payload_json);
    len = f.pe.ev.payload_len;
    char *p = strndup(f.pe.ev.payload_json, len);
    assert_string_equal(p, "{\"email\":\"[redacted]\",\"items\":[{\"email\":\"[redacted]\"}],"
                           "\"card\":{\"number\":\"[redacted]\",\"exp\":\"12/30\"},\"number\":5}");
    free(p);
    fx_teardown(&f);
}

static void test_plugin_host_mask_hash_is_keyed_and_stable(void **state) {
    struct fx f;
    fx_setup(&f,
             "  - name: m\n    path: mask\n    settings: { fields: [email], mode: hash, key: "
             "k0123456789abcdef }\n",
             "m", true);
    assert_int_equal(run(&f, "order:shop:1", "{\"email\":\"a@b.c\"}"), EB_PLUGIN_RUN_CONTINUE);
    char *first = strndup(f.pe.ev.payload_json, f.pe.ev.payload_len);
    /* HMAC-SHA256("k0123456789abcdef", "a@b.c"), by openssl dgst -sha256 -hmac */
    assert_string_equal(first, "{\"email\":\"hmac-sha256:"
                               "2ab742115692b36fe35edc57f6a437e02298af64e70e48a87f7d27cb796c77ed\"}");
    free(first);
    fx_teardown(&f);
}

static void test_plugin_host_mask_leaves_routes_without_payload_alone(void **state) {
    struct fx f;
    fx_setup(&f, "  - name: m\n    path: mask\n    settings: { fields: [email] }\n", "m", false);
    assert_int_equal(run(&f, "order:shop:1", NULL), EB_PLUGIN_RUN_CONTINUE);
    fx_teardown(&f);
}

/* ---- failures ---------------------------------------------------------- */

#define FAULTY                                                                                     \
    "  - name: bad\n    path: ${EB_TEST_BAD_PLUGIN_DIR}/faulty.so\n    settings: { reason: nope }\n"

static void test_plugin_host_error_return_names_instance_and_reason(void **state) {
    struct fx f;
    fx_setup(&f, FAULTY, "bad", false);
    assert_int_equal(run(&f, "order:x:fail", NULL), EB_PLUGIN_RUN_ERROR);
    assert_string_equal(f.pe.failed, "bad");
    assert_string_equal(f.pe.reason, "nope");
    assert_int_equal(run(&f, "order:x:ok", NULL), EB_PLUGIN_RUN_CONTINUE);
    fx_teardown(&f);
}

static void test_plugin_host_crash_in_a_forked_child_spares_the_parent(void **state) {
    struct fx f;
    fx_setup(&f, FAULTY, "bad", false);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        run(&f, "order:x:crash", NULL);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    /* The parent goes on with the next event. */
    assert_int_equal(run(&f, "order:x:ok", NULL), EB_PLUGIN_RUN_CONTINUE);
    fx_teardown(&f);
}

static void test_plugin_host_avro_fails_events_until_the_schema_id_is_known(void **state) {
    struct fx f;
    fx_setup(&f,
             "  - name: av\n    path: avro\n    settings: { registry: \"http://127.0.0.1:9\", "
             "subject: orders-value, timeout: 200ms }\n",
             "av", false);
    assert_int_equal(run(&f, "order:x:1", NULL), EB_PLUGIN_RUN_ERROR);
    assert_contains(f.pe.reason, "schema id is not known yet");
    fx_teardown(&f);
}

/* ---- the host's context ------------------------------------------------ */

#define LOGGER(name, settings)                                                                     \
    HEAD "  - name: " name "\n    path: ${EB_TEST_BAD_PLUGIN_DIR}/logger.so\n    settings: "       \
         settings "\nroutes:\n  - name: r\n    match: \"order:{id}\"\n    topic: orders\n"         \
         "    plugins: [" name "]\n"

/* Everything written to f so far, NUL-terminated (static storage). */
static const char *file_text(FILE *f) {
    static char text[8192];
    size_t n;
    fflush(f);
    rewind(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    return text;
}

/* Two loaders, as two bridges in one process would have: each instance's
 * log lines (here from a thread the plugin started) reach its own
 * loader's log, named after the instance. */
static void test_plugin_host_logs_reach_the_log_of_the_instances_loader(void **state) {
    FILE *fa = tmpfile(), *fb = tmpfile();
    assert_non_null(fa);
    assert_non_null(fb);
    eb_log_t *la = eb_log_new(fileno(fa), EB_LOG_DEBUG), *lb = eb_log_new(fileno(fb), EB_LOG_DEBUG);
    eb_plugin_loader_t *a = eb_plugin_loader_new(la, NULL, NULL);
    eb_plugin_loader_t *b = eb_plugin_loader_new(lb, NULL, NULL);
    struct eb_config *ca = load_with(a, LOGGER("in-a", "{ message: hello-from-a }"));
    struct eb_config *cb = load_with(b, LOGGER("in-b", "{ message: hello-from-b }"));
    eb_plugin_set_t *sa = eb_plugin_set_new(a, ca, NULL, errbuf, sizeof(errbuf));
    eb_plugin_set_t *sb = eb_plugin_set_new(b, cb, NULL, errbuf, sizeof(errbuf));
    assert_non_null(sa);
    assert_non_null(sb);
    eb_plugin_set_destroy(sa); /* joins the plugin's thread */
    eb_plugin_set_destroy(sb);
    const char *ta = file_text(fa);
    assert_contains(ta, "\"msg\":\"hello-from-a\"");
    assert_contains(ta, "\"plugin\":\"in-a\"");
    assert_null(strstr(ta, "hello-from-b"));
    const char *tb = file_text(fb);
    assert_contains(tb, "\"msg\":\"hello-from-b\"");
    assert_contains(tb, "\"plugin\":\"in-b\"");
    assert_null(strstr(tb, "hello-from-a"));
    eb_config_free(ca);
    eb_config_free(cb);
    eb_plugin_loader_destroy(a);
    eb_plugin_loader_destroy(b);
    eb_log_destroy(la);
    eb_log_destroy(lb);
    fclose(fa);
    fclose(fb);
}

/* A settings error finds its check through the node it is about, whatever
 * thread reports it. */
static void test_plugin_host_settings_error_from_a_plugin_thread_is_reported(void **state) {
    const char *e = load_err(LOGGER("lg", "{ message: hi, fail_in_thread: refused in a thread }"));
    assert_contains(e, "t.yaml:9:26: invalid plugins[0].settings.message: refused in a thread");
}

/* ---- sets -------------------------------------------------------------- */

static void test_plugin_host_reload_keeps_unchanged_instances(void **state) {
    struct fx f;
    fx_setup(&f, ENRICH FILTER, "f, e", true);
    /* The same file with the filter's settings changed: enrich is kept,
     * filter is a new instance. */
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             HEAD ENRICH "  - name: f\n    path: filter\n    settings: { drop: [{ key: \"order:x:*\" }] }\n"
                         "routes:\n  - name: r\n    match: \"order:{tenant}:{id}\"\n"
                         "    topic: orders\n    plugins: [f, e]\n");
    struct eb_config *cfg2 = load(yaml);
    eb_plugin_set_t *set2 = eb_plugin_set_new(loader, cfg2, f.set, errbuf, sizeof(errbuf));
    assert_non_null(set2);
    assert_ptr_equal(eb_plugin_set_instance(f.set, 0), eb_plugin_set_instance(set2, 0));
    assert_ptr_not_equal(eb_plugin_set_instance(f.set, 1), eb_plugin_set_instance(set2, 1));
    /* The old set goes; the kept instance still runs in the new one. */
    eb_plugin_set_destroy(f.set);
    f.set = set2;
    eb_config_free(f.cfg);
    f.cfg = cfg2;
    assert_int_equal(run(&f, "order:shop:7", NULL), EB_PLUGIN_RUN_CONTINUE);
    assert_true(f.pe.topic_changed);
    assert_int_equal(run(&f, "order:x:7", NULL), EB_PLUGIN_RUN_DROP);
    fx_teardown(&f);
}

int main(void) {
    metrics = eb_metrics_new();
    loader = eb_plugin_loader_new(NULL, metrics, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_host_filter_drops_by_key_glob),
        cmocka_unit_test(test_plugin_host_filter_drops_by_payload_field),
        cmocka_unit_test(test_plugin_host_filter_drops_by_capture_in_list),
        cmocka_unit_test(test_plugin_host_filter_keep_drops_what_matches_no_keep_rule),
        cmocka_unit_test(test_plugin_host_enrich_adds_static_and_templated_fields),
        cmocka_unit_test(test_plugin_host_enrich_rewrites_topic_key_and_headers),
        cmocka_unit_test(test_plugin_host_fields_are_reset_between_events),
        cmocka_unit_test(test_plugin_host_added_fields_are_read_back_from_ext),
        cmocka_unit_test(test_plugin_host_a_name_ext_already_has_is_refused),
        cmocka_unit_test(test_plugin_host_enrich_refuses_a_field_name_at_its_key),
        cmocka_unit_test(test_plugin_host_mask_reports_a_bad_field_at_its_item),
        cmocka_unit_test(test_plugin_host_mask_redacts_fields_at_any_depth),
        cmocka_unit_test(test_plugin_host_mask_hash_is_keyed_and_stable),
        cmocka_unit_test(test_plugin_host_mask_leaves_routes_without_payload_alone),
        cmocka_unit_test(test_plugin_host_error_return_names_instance_and_reason),
        cmocka_unit_test(test_plugin_host_crash_in_a_forked_child_spares_the_parent),
        cmocka_unit_test(test_plugin_host_avro_fails_events_until_the_schema_id_is_known),
        cmocka_unit_test(test_plugin_host_logs_reach_the_log_of_the_instances_loader),
        cmocka_unit_test(test_plugin_host_settings_error_from_a_plugin_thread_is_reported),
        cmocka_unit_test(test_plugin_host_reload_keeps_unchanged_instances),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    eb_plugin_loader_destroy(loader);
    eb_metrics_destroy(metrics);
    return rc;
}
