/* event.c -- parse and check one expiry-bridge CloudEvent (see event.h).
 *
 * jansson does the JSON (a well-kept parser: UTF-8 checked, \u0000 refused,
 * duplicate keys refused with JSON_REJECT_DUPLICATES); this file only walks
 * the document and says precisely what is wrong, because that sentence is
 * what an operator reads in the dead-letter topic.
 */
#include "event.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

static int fail(char *why, size_t why_size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* obj[key] as an object; `path` names it in the reason. */
static json_t *want_object(json_t *obj, const char *key, const char *path, char *why,
                           size_t why_size) {
    json_t *v = json_object_get(obj, key);
    if (!v)
        fail(why, why_size, "%s: missing", path);
    else if (!json_is_object(v))
        fail(why, why_size, "%s: expected an object, got %s", path, type_name(v));
    else
        return v;
    return NULL;
}

/* obj[key] as a string of 1..max_len bytes; `path` names it in the reason. */
static const char *want_string(json_t *obj, const char *key, const char *path, size_t max_len,
                               char *why, size_t why_size) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        fail(why, why_size, "%s: missing", path);
        return NULL;
    }
    if (!json_is_string(v)) {
        fail(why, why_size, "%s: expected a string, got %s", path, type_name(v));
        return NULL;
    }
    size_t len = json_string_length(v);
    if (len == 0 || len > max_len) {
        fail(why, why_size, "%s: expected 1 to %zu bytes, got %zu", path, max_len, len);
        return NULL;
    }
    return json_string_value(v);
}

/* A positive decimal that fits a bigint. At most 18 digits, so the sum below
 * cannot overflow; leading zeros are refused ("007" and "7" would be two
 * spellings of one order in logs and keys). */
static bool parse_order_id(const char *s, int64_t *out) {
    size_t len = strlen(s);
    if (len == 0 || len > 18 || s[0] == '0')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int check(json_t *root, struct oc_event *ev, char *why, size_t why_size) {
    const char *s;

    if (!json_is_object(root))
        return fail(why, why_size, "expected a JSON object, got %s", type_name(root));

    if (!(s = want_string(root, "specversion", "specversion", 16, why, why_size)))
        return -1;
    if (strcmp(s, "1.0") != 0)
        return fail(why, why_size, "specversion: expected \"1.0\", got \"%s\"", s);

    if (!(s = want_string(root, "type", "type", 256, why, why_size)))
        return -1;
    if (strcmp(s, OC_EVENT_TYPE) != 0)
        return fail(why, why_size, "type: expected \"%s\", got \"%.100s\"", OC_EVENT_TYPE, s);

    if (!(s = want_string(root, "id", "id", OC_EVENT_ID_MAX, why, why_size)))
        return -1;
    memcpy(ev->id, s, strlen(s) + 1);

    json_t *data = want_object(root, "data", "data", why, why_size);
    if (!data)
        return -1;

    if (!(s = want_string(data, "delivery", "data.delivery", OC_DELIVERY_MAX, why, why_size)))
        return -1;
    memcpy(ev->delivery, s, strlen(s) + 1);

    json_t *params = want_object(data, "params", "data.params", why, why_size);
    if (!params)
        return -1;
    /* The bridge names in params_base64 the captures that are not UTF-8
     * (docs/event.md); such bytes cannot be a decimal order id. */
    if (json_object_get(json_object_get(data, "params_base64"), "order_id"))
        return fail(why, why_size, "data.params.order_id: not UTF-8 (see data.params_base64)");
    if (!(s = want_string(params, "order_id", "data.params.order_id", 64, why, why_size)))
        return -1;
    if (!parse_order_id(s, &ev->order_id))
        return fail(why, why_size,
                    "data.params.order_id: expected a positive integer of at most 18 digits, "
                    "got \"%s\"",
                    s);
    return 0;
}

int oc_event_parse(const void *buf, size_t len, struct oc_event *ev, char *why, size_t why_size) {
    if (!buf || len == 0)
        return fail(why, why_size, "empty message: no value");

    json_error_t err;
    json_t *root = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return fail(why, why_size, "not JSON: %s (line %d, column %d)", err.text, err.line,
                    err.column);
    memset(ev, 0, sizeof(*ev));
    int rc = check(root, ev, why, why_size);
    json_decref(root);
    return rc;
}
