/* settings.c -- ebp/settings.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ebp/settings.h>

void ebp_settings_errorf(const struct eb_plugin_host *h, const eb_plugin_settings_t *node,
                         const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    h->settings_error(node, msg);
}

void ebp_settings_key_errorf(const struct eb_plugin_host *h, const eb_plugin_settings_t *map,
                             size_t i, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    h->settings_key_error(map, i, msg);
}

int ebp_settings_known(const struct eb_plugin_host *h, const eb_plugin_settings_t *map,
                       const char *const *keys) {
    int bad = 0;
    char list[256] = "";
    size_t w = 0;
    for (size_t k = 0; keys[k] && w < sizeof(list); k++)
        w += (size_t)snprintf(list + w, sizeof(list) - w, "%s%s", k ? ", " : "", keys[k]);
    if (h->settings_kind(map) != EB_PLUGIN_SETTING_MAP) {
        ebp_settings_errorf(h, map, "expected a mapping with %s", list);
        return 1;
    }
    for (size_t i = 0; i < h->settings_count(map); i++) {
        const char *key = h->settings_key(map, i);
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], key) != 0)
            k++;
        if (!keys[k]) {
            ebp_settings_key_errorf(h, map, i, "unknown key '%.64s'; expected one of %s", key,
                                    list);
            bad++;
        }
    }
    return bad;
}

const char *ebp_settings_scalar(const struct eb_plugin_host *h, const eb_plugin_settings_t *map,
                                const char *key, bool required, bool *bad) {
    const eb_plugin_settings_t *n = h->settings_get(map, key);
    if (!n) {
        if (required) {
            ebp_settings_errorf(h, map, "missing %s", key);
            *bad = true;
        }
        return NULL;
    }
    const char *s = h->settings_string(n);
    if (!s) {
        ebp_settings_errorf(h, n, "expected a single value");
        *bad = true;
    }
    return s;
}

void ebp_settings_strings_free(char **v) {
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

int ebp_settings_strings(const struct eb_plugin_host *h, const eb_plugin_settings_t *map,
                         const char *key, bool required, char ***out, size_t *n) {
    const eb_plugin_settings_t *node = h->settings_get(map, key);
    *out = NULL;
    *n = 0;
    if (!node) {
        if (!required)
            return 0;
        ebp_settings_errorf(h, map, "missing %s", key);
        return -1;
    }
    bool list = h->settings_kind(node) == EB_PLUGIN_SETTING_LIST;
    size_t count = list ? h->settings_count(node) : 1;
    if (h->settings_kind(node) == EB_PLUGIN_SETTING_MAP || count == 0) {
        ebp_settings_errorf(h, node, "expected a list of values such as [a, b]");
        return -1;
    }
    char **v = calloc(count + 1, sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const eb_plugin_settings_t *it = list ? h->settings_item(node, i) : node;
        const char *s = h->settings_string(it);
        if (!s || !*s) {
            ebp_settings_errorf(h, it, "expected a non-empty value");
            ebp_settings_strings_free(v);
            return -1;
        }
        if (!(v[i] = strdup(s))) {
            ebp_settings_strings_free(v);
            return -1;
        }
    }
    *out = v;
    *n = count;
    return 0;
}

const eb_plugin_settings_t *ebp_settings_strings_at(const struct eb_plugin_host *h,
                                                    const eb_plugin_settings_t *map,
                                                    const char *key, size_t i) {
    const eb_plugin_settings_t *node = h->settings_get(map, key);
    return h->settings_kind(node) == EB_PLUGIN_SETTING_LIST ? h->settings_item(node, i) : node;
}

bool ebp_settings_bool(const struct eb_plugin_host *h, const eb_plugin_settings_t *map,
                       const char *key, bool def, bool *bad) {
    const char *s = ebp_settings_scalar(h, map, key, false, bad);
    if (!s)
        return def;
    if (strcmp(s, "true") == 0)
        return true;
    if (strcmp(s, "false") == 0)
        return false;
    ebp_settings_errorf(h, h->settings_get(map, key), "expected true or false");
    *bad = true;
    return def;
}
