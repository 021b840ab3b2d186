/* avro.c -- the `avro` encoder: each event as one Avro record in the
 * Confluent wire format (magic byte 0, the schema id as 4 bytes big-endian,
 * then the Avro binary encoding), the schema registered with a schema
 * registry through the Confluent REST API (plugins/avro/README.md).
 *
 *   settings:
 *     registry: http://registry:8081          # Confluent API base (Apicurio: .../apis/ccompat/v7)
 *     subject: shop.order.payment-timeout-value
 *     fields: [region]                        # optional: members of data.ext added
 *                                             # by earlier plugins (enrich), each
 *                                             # a nullable string
 *     timeout: 5s                             # per registry request (default 5s)
 *
 * Registry I/O never runs on the bridge's loop: init() starts a thread that
 * registers the schema (retrying with backoff), and until the id is known
 * encode() fails the event (counted; to the route's dead_letter topic if it
 * has one). Holding events instead would need a second bounded queue in
 * front of Kafka's; the registry is normally reached within a second of
 * start, and the failure is visible.
 *
 * The schema (namespace io.expirybridge.v1, record KeyEvent) is the
 * CloudEvent flattened: id, type, source, time (timestamp-micros), event,
 * key (bytes: Redis keys are binary), db, route, params (map), delivery
 * (enum), deadline (timestamp-millis or null), payload (the JSON text or
 * null), then the configured fields (data.ext members, as nullable strings).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include <ebp/buf.h>
#include <ebp/json.h>
#include <ebp/settings.h>
#include <expiry_bridge/plugin.h>

#include "registry.h"

#define MAX_FIELDS 32

static const char schema_head[] =
    "{\"type\":\"record\",\"name\":\"KeyEvent\",\"namespace\":\"io.expirybridge.v1\","
    "\"doc\":\"A Redis keyevent as expiry-bridge delivers it (docs/event.md), flattened.\","
    "\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":\"string\"},"
    "{\"name\":\"source\",\"type\":\"string\"},"
    "{\"name\":\"time\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
    "{\"name\":\"event\",\"type\":\"string\"},"
    "{\"name\":\"key\",\"type\":\"bytes\"},"
    "{\"name\":\"db\",\"type\":\"int\"},"
    "{\"name\":\"route\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"params\",\"type\":{\"type\":\"map\",\"values\":\"string\"}},"
    "{\"name\":\"delivery\",\"type\":{\"type\":\"enum\",\"name\":\"Delivery\","
    "\"symbols\":[\"live\",\"recovered\"]}},"
    "{\"name\":\"deadline\",\"type\":[\"null\",{\"type\":\"long\",\"logicalType\":"
    "\"timestamp-millis\"}],\"default\":null},"
    "{\"name\":\"payload\",\"type\":[\"null\",\"string\"],\"default\":null}";

struct avro_enc {
    const struct eb_plugin_host *h;
    const eb_plugin_ctx_t *ctx; /* the registry thread logs with it; valid until destroy returns */
    char *registry_url, *subject;
    char **fields;
    size_t nfields;
    long timeout_ms;
    char *schema_json;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t rec;
    bool rec_ok;
    struct registry *reg;
    /* per event */
    struct ebp_buf str, bin;
};

static void enc_free(struct avro_enc *a) {
    if (!a)
        return;
    registry_stop(a->reg);
    if (a->rec_ok)
        avro_value_decref(&a->rec);
    if (a->iface)
        avro_value_iface_decref(a->iface);
    if (a->schema)
        avro_schema_decref(a->schema);
    free(a->registry_url);
    free(a->subject);
    ebp_settings_strings_free(a->fields);
    free(a->schema_json);
    ebp_buf_free(&a->str);
    ebp_buf_free(&a->bin);
    free(a);
}

static bool avro_name(const char *s) {
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    }
    return strlen(s) <= 128;
}

/* "5s", "500ms" -> ms; -1 when not one of those. */
static long parse_timeout(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v <= 0 || v > 600000)
        return -1;
    if (strcmp(end, "ms") == 0)
        return v;
    if (strcmp(end, "s") == 0 && v <= 600)
        return v * 1000;
    return -1;
}

static struct avro_enc *enc_parse(const struct eb_plugin_host *h,
                                  const eb_plugin_settings_t *settings) {
    static const char *const keys[] = {"registry", "subject", "fields", "timeout", NULL};
    static const char *const taken[] = {"id",     "type",     "source",   "time",    "event",
                                        "key",    "db",       "route",    "params",  "delivery",
                                        "deadline", "payload", NULL};
    struct avro_enc *a = calloc(1, sizeof(*a));
    bool bad = false;
    if (!a)
        return NULL;
    a->h = h;
    bad |= ebp_settings_known(h, settings, keys) > 0;
    const char *url = ebp_settings_scalar(h, settings, "registry", true, &bad);
    if (url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        ebp_settings_errorf(h, h->settings_get(settings, "registry"),
                            "expected an http:// or https:// URL of a Confluent-compatible schema "
                            "registry");
        bad = true;
    }
    const char *subject = ebp_settings_scalar(h, settings, "subject", true, &bad);
    if (subject && !*subject) {
        ebp_settings_errorf(h, h->settings_get(settings, "subject"),
                            "expected a subject name such as orders-value");
        bad = true;
    }
    const char *timeout = ebp_settings_scalar(h, settings, "timeout", false, &bad);
    a->timeout_ms = timeout ? parse_timeout(timeout) : 5000;
    if (a->timeout_ms < 0) {
        ebp_settings_errorf(h, h->settings_get(settings, "timeout"),
                            "expected a duration such as 5s or 500ms, at most 600s");
        bad = true;
    }
    bad |= ebp_settings_strings(h, settings, "fields", false, &a->fields, &a->nfields) != 0;
    for (size_t i = 0; !bad && i < a->nfields; i++) {
        bool clash = false;
        for (size_t k = 0; taken[k]; k++)
            clash |= strcmp(taken[k], a->fields[i]) == 0;
        if (!avro_name(a->fields[i]) || clash || i >= MAX_FIELDS) {
            ebp_settings_errorf(h, ebp_settings_strings_at(h, settings, "fields", i),
                                "'%.64s' is not usable: expected at most %d names of "
                                "[A-Za-z_][A-Za-z0-9_]* that the schema does not already have",
                                a->fields[i], MAX_FIELDS);
            bad = true;
        }
    }
    if (bad)
        goto err_free;
    a->registry_url = strdup(url);
    a->subject = strdup(subject);
    struct ebp_buf s = EBP_BUF_INIT;
    ebp_buf_puts(&s, schema_head);
    for (size_t i = 0; i < a->nfields; i++) {
        ebp_buf_puts(&s, ",{\"name\":\"");
        ebp_buf_puts(&s, a->fields[i]);
        ebp_buf_puts(&s, "\",\"type\":[\"null\",\"string\"],\"default\":null}");
    }
    ebp_buf_puts(&s, "]}");
    ebp_buf_putc(&s, '\0');
    a->schema_json = s.data;
    if (!ebp_buf_ok(&s) || !a->registry_url || !a->subject)
        goto err_free;
    if (avro_schema_from_json_length(a->schema_json, s.len - 1, &a->schema) != 0) {
        ebp_settings_errorf(h, settings, "the Avro library refused the schema: %.200s",
                            avro_strerror());
        goto err_free;
    }
    return a;

err_free:
    enc_free(a);
    return NULL;
}

static int enc_check(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                     const eb_plugin_settings_t *settings) {
    (void)ctx;
    struct avro_enc *a = enc_parse(h, settings);
    enc_free(a);
    return a ? 0 : -1;
}

static int enc_init(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                    const eb_plugin_settings_t *settings, void **state, char *errstr,
                    size_t errstr_size) {
    struct avro_enc *a = enc_parse(h, settings);
    if (!a)
        return -1;
    a->ctx = ctx;
    a->iface = avro_generic_class_from_schema(a->schema);
    if (!a->iface || avro_generic_value_new(a->iface, &a->rec) != 0) {
        snprintf(errstr, errstr_size, "cannot set up the Avro record: %s", avro_strerror());
        enc_free(a);
        return -1;
    }
    a->rec_ok = true;
    a->reg = registry_start(h, ctx, a->registry_url, a->subject, a->schema_json, a->timeout_ms);
    if (!a->reg) {
        snprintf(errstr, errstr_size, "cannot start the schema registry thread");
        enc_free(a);
        return -1;
    }
    *state = a;
    return 0;
}

/* Set a string member from bytes (made valid UTF-8, NUL-terminated as
 * avro-c wants). */
static int set_str(struct avro_enc *a, avro_value_t *v, const void *p, size_t n) {
    ebp_buf_reset(&a->str);
    ebp_buf_utf8(&a->str, p, n);
    ebp_buf_putc(&a->str, '\0');
    if (!ebp_buf_ok(&a->str))
        return -1;
    return avro_value_set_string_len(v, a->str.data, a->str.len);
}

static int field(struct avro_enc *a, const char *name, avro_value_t *out) {
    return avro_value_get_by_name(&a->rec, name, out, NULL);
}

/* A nullable string member: null, or text. */
static int set_opt_str(struct avro_enc *a, const char *name, const void *p, size_t n) {
    avro_value_t f, b;
    if (field(a, name, &f) || avro_value_set_branch(&f, p ? 1 : 0, &b))
        return -1;
    return p ? set_str(a, &b, p, n) : avro_value_set_null(&b);
}

static int fill(struct avro_enc *a, eb_plugin_event_t *ev) {
    const struct eb_plugin_host *h = a->h;
    avro_value_t f, b, e;
    size_t len;
    const char *s;
    char type[160];
    int rc = 0;
    avro_value_reset(&a->rec);
    s = h->id(ev);
    rc |= field(a, "id", &f) || set_str(a, &f, s, strlen(s));
    snprintf(type, sizeof(type), "redis.key.%s", h->event_name(ev));
    rc |= field(a, "type", &f) || set_str(a, &f, type, strlen(type));
    s = h->source(ev);
    rc |= field(a, "source", &f) || set_str(a, &f, s, strlen(s));
    rc |= field(a, "time", &f) || avro_value_set_long(&f, h->time_us(ev));
    s = h->event_name(ev);
    rc |= field(a, "event", &f) || set_str(a, &f, s, strlen(s));
    const void *key = h->key(ev, &len);
    /* avro-c copies bytes it is given (set_bytes, not give_bytes). */
    rc |= field(a, "key", &f) || avro_value_set_bytes(&f, (void *)(uintptr_t)key, len);
    rc |= field(a, "db", &f) || avro_value_set_int(&f, h->db(ev));
    s = h->route(ev);
    rc |= set_opt_str(a, "route", s, s ? strlen(s) : 0);
    rc |= field(a, "params", &f);
    for (size_t i = 0; !rc && i < h->param_count(ev); i++) {
        const char *name = h->param_name(ev, i), *v = h->param_value(ev, i, &len);
        rc |= avro_value_add(&f, name, &e, NULL, NULL) || set_str(a, &e, v, len);
    }
    rc |= field(a, "delivery", &f) ||
          avro_value_set_enum(&f, strcmp(h->delivery(ev), "recovered") == 0 ? 1 : 0);
    int64_t dl = h->deadline_ms(ev);
    rc |= field(a, "deadline", &f) || avro_value_set_branch(&f, dl >= 0, &b) ||
          (dl >= 0 ? avro_value_set_long(&b, dl) : avro_value_set_null(&b));
    s = h->payload(ev, &len);
    rc |= set_opt_str(a, "payload", s, len);
    for (size_t i = 0; i < a->nfields; i++) {
        char path[4 + 129];
        snprintf(path, sizeof(path), "ext.%s", a->fields[i]);
        s = h->field(ev, path, &len);
        if (s && len == 4 && memcmp(s, "null", 4) == 0)
            s = NULL;
        if (s && s[0] == '"') {
            ebp_buf_reset(&a->bin);
            if (!ebp_json_unquote(s, len, &a->bin) || !ebp_buf_ok(&a->bin))
                return -1;
            /* set_opt_str copies through a->str, so a->bin may be the source */
            rc |= set_opt_str(a, a->fields[i], a->bin.data ? a->bin.data : "", a->bin.len);
        } else {
            rc |= set_opt_str(a, a->fields[i], s, s ? len : 0);
        }
    }
    return rc ? -1 : 0;
}

static int enc_encode(void *state, eb_plugin_event_t *ev, eb_plugin_output_t *out) {
    struct avro_enc *a = state;
    const struct eb_plugin_host *h = a->h;
    int64_t id = registry_id(a->reg);
    if (id < 0) {
        h->fail(ev, "the schema id is not known yet (the schema registry has not answered)");
        return EB_PLUGIN_ERROR;
    }
    if (fill(a, ev) != 0) {
        h->fail(ev, "cannot build the Avro record");
        return EB_PLUGIN_ERROR;
    }
    size_t size = 0;
    if (avro_value_sizeof(&a->rec, &size) != 0) {
        h->fail(ev, "cannot size the Avro record");
        return EB_PLUGIN_ERROR;
    }
    unsigned char head[5] = {0, (unsigned char)(id >> 24), (unsigned char)(id >> 16),
                             (unsigned char)(id >> 8), (unsigned char)id};
    ebp_buf_reset(&a->bin);
    ebp_buf_append(&a->bin, head, 5);
    if (!ebp_buf_grow(&a->bin, size) || !ebp_buf_ok(&a->bin)) {
        h->fail(ev, "out of memory encoding the Avro record");
        return EB_PLUGIN_ERROR;
    }
    avro_writer_t w = avro_writer_memory(a->bin.data + 5, (int64_t)size);
    int rc = w ? avro_value_write(w, &a->rec) : -1;
    if (w)
        avro_writer_free(w);
    if (rc != 0 || h->output_write(out, a->bin.data, 5 + size) != 0) {
        h->fail(ev, "cannot write the Avro record");
        return EB_PLUGIN_ERROR;
    }
    return 0;
}

static void enc_destroy(void *state) {
    enc_free(state);
}

EB_PLUGIN_DEFINE(EB_PLUGIN_ENCODER, "avro", "1.0.0",
                 "Avro in the Confluent wire format, schema registered with a schema registry",
                 enc_check, enc_init, NULL, enc_encode, enc_destroy);
