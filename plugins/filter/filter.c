/* filter.c -- the `filter` transform: drop events by Redis key pattern or
 * by a field of `data` (plugins/filter/README.md).
 *
 *   settings:
 *     drop:                          # an event matching any rule is dropped
 *       - key: "order:test-*"        # glob on the Redis key (* ? \)
 *       - field: payload.status      # a data field by dotted path...
 *         equals: paid               # ...equal to this (strings compared unquoted)
 *       - field: params.tenant
 *         in: [demo, sandbox]
 *       - field: payload.test
 *         exists: true
 *       - field: ext.region          # a field an earlier plugin (enrich) added
 *         equals: test
 *     keep: [...]                    # optional: events matching no keep rule are dropped
 *
 * Per event: a glob per key rule, a field lookup per field rule; nothing is
 * allocated once the scratch buffer has grown.
 */
#include <stdlib.h>
#include <string.h>

#include <ebp/buf.h>
#include <ebp/glob.h>
#include <ebp/json.h>
#include <ebp/settings.h>
#include <expiry_bridge/plugin.h>

enum rule_kind { RULE_KEY, RULE_EQUALS, RULE_EXISTS };

struct rule {
    enum rule_kind kind;
    char *glob;   /* RULE_KEY */
    char *field;  /* RULE_EQUALS, RULE_EXISTS */
    char **in;    /* RULE_EQUALS: any of these */
    size_t nin;
    bool exists;  /* RULE_EXISTS */
};

struct filter {
    const struct eb_plugin_host *h;
    struct rule *drop, *keep;
    size_t ndrop, nkeep;
    struct ebp_buf tmp;
};

static void rules_free(struct rule *r, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(r[i].glob);
        free(r[i].field);
        ebp_settings_strings_free(r[i].in);
    }
    free(r);
}

static int rule_parse(const struct eb_plugin_host *h, const eb_plugin_settings_t *item,
                      struct rule *r) {
    static const char *const keys[] = {"key", "field", "equals", "in", "exists", NULL};
    bool bad = ebp_settings_known(h, item, keys) > 0;
    if (bad)
        return -1;
    const char *key = ebp_settings_scalar(h, item, "key", false, &bad);
    const char *field = ebp_settings_scalar(h, item, "field", false, &bad);
    if (bad)
        return -1;
    if (!key == !field) {
        ebp_settings_errorf(h, item, "expected exactly one of key (a glob on the Redis key) or "
                                     "field (a data field)");
        return -1;
    }
    if (key) {
        if (h->settings_get(item, "equals") || h->settings_get(item, "in") ||
            h->settings_get(item, "exists")) {
            ebp_settings_errorf(h, item, "a key rule takes no equals, in or exists");
            return -1;
        }
        r->kind = RULE_KEY;
        return (r->glob = strdup(key)) ? 0 : -1;
    }
    if (!(r->field = strdup(field)))
        return -1;
    int given = !!h->settings_get(item, "equals") + !!h->settings_get(item, "in") +
                !!h->settings_get(item, "exists");
    if (given != 1) {
        ebp_settings_errorf(h, item, "a field rule takes exactly one of equals, in or exists");
        return -1;
    }
    if (h->settings_get(item, "exists")) {
        r->kind = RULE_EXISTS;
        r->exists = ebp_settings_bool(h, item, "exists", true, &bad);
        return bad ? -1 : 0;
    }
    r->kind = RULE_EQUALS;
    return ebp_settings_strings(h, item, h->settings_get(item, "in") ? "in" : "equals", true,
                                &r->in, &r->nin);
}

static int rules_parse(const struct eb_plugin_host *h, const eb_plugin_settings_t *settings,
                       const char *key, struct rule **out, size_t *n) {
    const eb_plugin_settings_t *list = h->settings_get(settings, key);
    *out = NULL;
    *n = 0;
    if (!list)
        return 0;
    if (h->settings_kind(list) != EB_PLUGIN_SETTING_LIST || h->settings_count(list) == 0) {
        ebp_settings_errorf(h, list, "expected a non-empty list of rules such as "
                                     "[{key: \"order:test-*\"}]");
        return -1;
    }
    size_t count = h->settings_count(list);
    struct rule *r = calloc(count, sizeof(*r));
    if (!r)
        return -1;
    int bad = 0;
    for (size_t i = 0; i < count; i++)
        bad |= rule_parse(h, h->settings_item(list, i), &r[i]);
    if (bad) {
        rules_free(r, count);
        return -1;
    }
    *out = r;
    *n = count;
    return 0;
}

static void filter_free(struct filter *f) {
    if (!f)
        return;
    rules_free(f->drop, f->ndrop);
    rules_free(f->keep, f->nkeep);
    ebp_buf_free(&f->tmp);
    free(f);
}

static struct filter *filter_parse(const struct eb_plugin_host *h,
                                   const eb_plugin_settings_t *settings) {
    static const char *const keys[] = {"drop", "keep", NULL};
    struct filter *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->h = h;
    int bad = ebp_settings_known(h, settings, keys);
    bad |= rules_parse(h, settings, "drop", &f->drop, &f->ndrop);
    bad |= rules_parse(h, settings, "keep", &f->keep, &f->nkeep);
    if (!bad && !f->ndrop && !f->nkeep) {
        ebp_settings_errorf(h, settings, "expected drop or keep rules");
        bad = 1;
    }
    if (bad) {
        filter_free(f);
        return NULL;
    }
    return f;
}

EBP_PARSED_PLUGIN(filter, struct filter, filter_parse, filter_free)

static bool rule_matches(struct filter *f, const struct rule *r, eb_plugin_event_t *ev) {
    const struct eb_plugin_host *h = f->h;
    size_t len;
    if (r->kind == RULE_KEY) {
        const void *key = h->key(ev, &len);
        return ebp_glob_match(r->glob, key, len);
    }
    const char *v = h->field(ev, r->field, &len);
    bool present = v && !(len == 4 && memcmp(v, "null", 4) == 0);
    if (r->kind == RULE_EXISTS)
        return present == r->exists;
    if (!present)
        return false;
    const char *cmp = v;
    size_t cmplen = len;
    if (v[0] == '"') {
        ebp_buf_reset(&f->tmp);
        if (!ebp_json_unquote(v, len, &f->tmp) || !ebp_buf_ok(&f->tmp))
            return false;
        cmp = f->tmp.data ? f->tmp.data : "";
        cmplen = f->tmp.len;
    }
    for (size_t i = 0; i < r->nin; i++) {
        if (strlen(r->in[i]) == cmplen && memcmp(r->in[i], cmp, cmplen) == 0)
            return true;
    }
    return false;
}

static bool any(struct filter *f, const struct rule *r, size_t n, eb_plugin_event_t *ev) {
    for (size_t i = 0; i < n; i++) {
        if (rule_matches(f, &r[i], ev))
            return true;
    }
    return false;
}

static int filter_transform(void *state, eb_plugin_event_t *ev) {
    struct filter *f = state;
    if (f->nkeep && !any(f, f->keep, f->nkeep, ev))
        return EB_PLUGIN_DROP;
    return any(f, f->drop, f->ndrop, ev) ? EB_PLUGIN_DROP : EB_PLUGIN_CONTINUE;
}

EB_PLUGIN_DEFINE(EB_PLUGIN_TRANSFORM, "filter", "1.0.0",
                 "drops events by Redis key pattern or by a data field", filter_check,
                 filter_init, filter_transform, NULL, filter_destroy);
