/* enrich.c -- the `enrich` transform: add static or templated fields to
 * `data.ext`, and optionally rewrite the topic, the Kafka key and headers
 * from templates (plugins/enrich/README.md).
 *
 *   settings:
 *     fields:                         # added to data.ext as JSON strings
 *       region: eu-west               # static
 *       order_url: "https://shop.example/orders/{order_id}"
 *     headers: { x-tenant: "{tenant}" }
 *     topic: "orders.{tenant}.expired"
 *     kafka_key: "{order_id}"
 *
 * Template variables: key, db, event, route, source, id, delivery, topic,
 * a capture of the route's pattern ({order_id}, or params.order_id), and
 * payload.PATH (a string is inserted unquoted, anything else as its JSON
 * text). A variable without a value renders as nothing.
 *
 * The fields land in data.ext, the event's extension object, never beside
 * the core members (docs/event.md, "Extensions"): {"ext":{"region":
 * "eu-west","order_url":"https://..."}}. A field name is 1 to 128 bytes
 * without '.', '"', '\\' or control characters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ebp/buf.h>
#include <ebp/json.h>
#include <ebp/settings.h>
#include <ebp/template.h>
#include <expiry_bridge/plugin.h>

struct named {
    char *name;
    struct ebp_template t;
};

struct enrich {
    const struct eb_plugin_host *h;
    struct named *fields, *headers;
    size_t nfields, nheaders;
    struct ebp_template topic, kafka_key;
    bool has_topic, has_key;
    /* per event */
    eb_plugin_event_t *ev;
    struct ebp_buf out, json, var;
    char num[24];
};

static void named_free(struct named *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        ebp_template_free(&v[i].t);
    }
    free(v);
}

static void enrich_free(struct enrich *e) {
    if (!e)
        return;
    named_free(e->fields, e->nfields);
    named_free(e->headers, e->nheaders);
    ebp_template_free(&e->topic);
    ebp_template_free(&e->kafka_key);
    ebp_buf_free(&e->out);
    ebp_buf_free(&e->json);
    ebp_buf_free(&e->var);
    free(e);
}

static int template_at(const struct eb_plugin_host *h, const eb_plugin_settings_t *node,
                       struct ebp_template *t) {
    const char *s = h->settings_string(node);
    const char *why;
    size_t off;
    if (!s) {
        ebp_settings_errorf(h, node, "expected a template such as \"orders.{tenant}\"");
        return -1;
    }
    if (ebp_template_parse(s, t, &why, &off) != 0) {
        ebp_settings_errorf(h, node, "%s (at character %zu); expected a template such as "
                                     "\"orders.{tenant}\"", why, off + 1);
        return -1;
    }
    return 0;
}

/* A name the host's add_field() takes (plugin.h). */
static bool field_name_ok(const char *name) {
    size_t n = strlen(name);
    return n > 0 && n <= 128 && ebp_json_plain_name(name, n);
}

static int named_parse(const struct eb_plugin_host *h, const eb_plugin_settings_t *settings,
                       const char *key, bool fields, struct named **out, size_t *n) {
    const eb_plugin_settings_t *map = h->settings_get(settings, key);
    *out = NULL;
    *n = 0;
    if (!map)
        return 0;
    if (h->settings_kind(map) != EB_PLUGIN_SETTING_MAP || h->settings_count(map) == 0) {
        ebp_settings_errorf(h, map, "expected a mapping of names to templates");
        return -1;
    }
    size_t count = h->settings_count(map);
    struct named *v = calloc(count, sizeof(*v));
    int bad = 0;
    if (!v)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const char *name = h->settings_key(map, i);
        const eb_plugin_settings_t *val = h->settings_item(map, i);
        if (fields && !field_name_ok(name)) {
            ebp_settings_key_errorf(h, map, i, "'%.64s' is not a field name; expected 1 to 128 "
                                               "bytes without '.', '\"', '\\' or control "
                                               "characters", name);
            bad = 1;
            continue;
        }
        if (!fields && (strcasecmp(name, "content-type") == 0 || strncasecmp(name, "ce_", 3) == 0)) {
            ebp_settings_key_errorf(h, map, i, "content-type and ce_* belong to the format; "
                                               "expected another header name");
            bad = 1;
            continue;
        }
        if (!(v[i].name = strdup(name)) || template_at(h, val, &v[i].t) != 0)
            bad = 1;
    }
    *out = v;
    *n = count;
    return bad ? -1 : 0;
}

static struct enrich *enrich_parse(const struct eb_plugin_host *h,
                                   const eb_plugin_settings_t *settings) {
    static const char *const keys[] = {"fields", "headers", "topic", "kafka_key", NULL};
    struct enrich *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->h = h;
    int bad = ebp_settings_known(h, settings, keys);
    bad |= named_parse(h, settings, "fields", true, &e->fields, &e->nfields);
    bad |= named_parse(h, settings, "headers", false, &e->headers, &e->nheaders);
    const eb_plugin_settings_t *n;
    if ((n = h->settings_get(settings, "topic"))) {
        bad |= template_at(h, n, &e->topic);
        e->has_topic = true;
    }
    if ((n = h->settings_get(settings, "kafka_key"))) {
        bad |= template_at(h, n, &e->kafka_key);
        e->has_key = true;
    }
    if (!bad && !e->nfields && !e->nheaders && !e->has_topic && !e->has_key) {
        ebp_settings_errorf(h, settings, "expected fields, headers, topic or kafka_key");
        bad = 1;
    }
    if (bad) {
        enrich_free(e);
        return NULL;
    }
    return e;
}

EBP_PARSED_PLUGIN(enrich, struct enrich, enrich_parse, enrich_free)

/* ebp_template_var_fn: one variable of the event. */
static bool var(void *opaque, const char *name, size_t len, const char **v, size_t *vlen) {
    struct enrich *e = opaque;
    const struct eb_plugin_host *h = e->h;
    char n[136];
    snprintf(n, sizeof(n), "%.*s", (int)len, name);
    /* A capture first: a pattern may name one "id" or "source". */
    const char *cap = strncmp(n, "params.", 7) == 0 ? n + 7 : n;
    if ((*v = h->param(e->ev, cap, vlen)))
        return true;
    if (strcmp(n, "key") == 0) {
        *v = h->key(e->ev, vlen);
        return true;
    }
    if (strcmp(n, "db") == 0) {
        *vlen = (size_t)snprintf(e->num, sizeof(e->num), "%d", h->db(e->ev));
        *v = e->num;
        return true;
    }
    const char *s = strcmp(n, "event") == 0      ? h->event_name(e->ev)
                    : strcmp(n, "route") == 0    ? h->route(e->ev)
                    : strcmp(n, "source") == 0   ? h->source(e->ev)
                    : strcmp(n, "id") == 0       ? h->id(e->ev)
                    : strcmp(n, "delivery") == 0 ? h->delivery(e->ev)
                    : strcmp(n, "topic") == 0    ? h->topic(e->ev)
                                                 : NULL;
    if (s) {
        *v = s;
        *vlen = strlen(s);
        return true;
    }
    if (strncmp(n, "payload.", 8) != 0 || !(s = h->field(e->ev, n, vlen)))
        return false;
    ebp_buf_reset(&e->var);
    if (s[0] == '"' && ebp_json_unquote(s, *vlen, &e->var) && ebp_buf_ok(&e->var)) {
        *v = e->var.data ? e->var.data : "";
        *vlen = e->var.len;
    } else {
        *v = s;
    }
    return true;
}

static void render(struct enrich *e, const struct ebp_template *t) {
    ebp_buf_reset(&e->out);
    ebp_template_render(t, var, e, &e->out);
    ebp_buf_putc(&e->out, '\0');
    e->out.len--;
}

static int failed(struct enrich *e, const char *what) {
    e->h->fail(e->ev, what);
    return EB_PLUGIN_ERROR;
}

static int enrich_transform(void *state, eb_plugin_event_t *ev) {
    struct enrich *e = state;
    const struct eb_plugin_host *h = e->h;
    e->ev = ev;
    for (size_t i = 0; i < e->nfields; i++) {
        render(e, &e->fields[i].t);
        ebp_buf_reset(&e->json);
        ebp_buf_json_string(&e->json, e->out.data ? e->out.data : "", e->out.len);
        if (!ebp_buf_ok(&e->out) || !ebp_buf_ok(&e->json) ||
            h->add_field(ev, e->fields[i].name, e->json.data, e->json.len) != 0)
            return failed(e, "cannot add a field (already in data.ext, or out of memory)");
    }
    for (size_t i = 0; i < e->nheaders; i++) {
        render(e, &e->headers[i].t);
        if (!ebp_buf_ok(&e->out) ||
            h->set_header(ev, e->headers[i].name, e->out.data ? e->out.data : "", e->out.len) != 0)
            return failed(e, "cannot set a header (too many headers, or out of memory)");
    }
    if (e->has_topic) {
        render(e, &e->topic);
        if (!ebp_buf_ok(&e->out) || h->set_topic(ev, e->out.data ? e->out.data : "") != 0)
            return failed(e, "the rendered topic is not a valid Kafka topic name");
    }
    if (e->has_key) {
        render(e, &e->kafka_key);
        if (!ebp_buf_ok(&e->out) || h->set_kafka_key(ev, e->out.data, e->out.len) != 0)
            return failed(e, "cannot set the Kafka key (out of memory)");
    }
    return EB_PLUGIN_CONTINUE;
}

EB_PLUGIN_DEFINE(EB_PLUGIN_TRANSFORM, "enrich", "1.0.0",
                 "adds static or templated fields to data; rewrites topic, key and headers",
                 enrich_check, enrich_init, enrich_transform, NULL, enrich_destroy);
